"""A scripted conversation through AvatarVideoGenerator (avatar_agent.py).

    agent_demo.py MODEL_DIR REFERENCE_IMAGE MAX_AREA [--check]

The "agent" says three utterances (synthesised voiced tones standing in for
TTS audio, pushed in 100 ms chunks faster than real time, as TTS streams
do), with silences between them, and barges in on the second one as soon as
its first frame is out.  The consumer prints one line per segment.

--check turns the run into a test (examples/pipelines/run-ci.sh):
  * idle: in each silence, frames keep coming: at least 90 % of its 40 ms
    slots have a frame.  Nothing is pushed then: the element's idle=silence
    feeds it, and live, a slot the (slower than real time) engine misses
    gets a GAP repeat, so these frames may be repeats; the check still
    fails when the element stops pushing;
  * barge-in: after clear_buffer, at most one block (12 frames) made from
    the dropped audio still comes out of the pipeline (frames before the
    new stream's DISCONT buffer, or older than the clear);
  * the third utterance, after the barge-in, gets its frames (no reload:
    the pipeline never leaves PLAYING; how many were generated in time is
    printed), and every segment gets its end marker (the second one marked
    interrupted);
  * the audio handed out with the frames covers the time line once.
"""
import math
import struct
import sys
import threading
import time

from avatar_agent import (RATE, FRAME_NS, AvatarFrame, AvatarVideoGenerator,
                          SegmentEnd)

BLOCK_FRAMES = 12


def voiced(seconds, f0):
    """Speech-like test audio: a harmonic tone in 4 Hz syllables."""
    n = int(seconds * RATE)
    out = bytearray()
    for i in range(n):
        t = i / RATE
        env = max(0.0, math.sin(2 * math.pi * 4 * t)) ** 0.5
        v = sum(math.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3))
        out += struct.pack("<h", int(6000 * env * v))
    return bytes(out)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    model, image, area = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check = "--check" in sys.argv[4:]
    gen = AvatarVideoGenerator(model, image, max_area=area)
    t_load = time.monotonic()
    gen.start()
    print("agent: model loaded in %.1f s" % (time.monotonic() - t_load))

    utterances = [voiced(1.5, 140), voiced(4.0, 190), voiced(1.2, 120)]
    silence_s = [1.0, 1.5, 1.5, 1.0]   # before, between, and after them
    silences = []                      # (start, end) samples on the time line
    spoken = {}                        # segment -> (start, end) samples
    second_started = threading.Event()
    state = {"segment2": None, "clear_pos": None, "frames_after_clear": 0}

    def wait_clock(samples):
        # nothing is pushed: the element idles on its own
        while gen.clock_samples() < samples:
            time.sleep(0.02)

    def agent():
        for i, pcm in enumerate(utterances):
            # the silence starts where the last speech ends on the time line
            start = max(gen.pos, gen.clock_samples())
            wait_clock(start + int(silence_s[i] * RATE))
            silences.append((start, gen.clock_samples()))
            seg = None
            for k in range(0, len(pcm), RATE // 10 * 2):   # 100 ms chunks
                seg = gen.push_audio(pcm[k:k + RATE // 10 * 2])
            gen.end_segment()
            spoken[seg] = (gen.segments[-1][1], gen.pos)
            if i == 1:
                state["segment2"] = seg
                second_started.wait(600)
                gen.clear_buffer()          # barge-in
                state["clear_pos"] = gen.cleared_at
        start = max(gen.pos, gen.clock_samples())
        wait_clock(start + int(silence_s[-1] * RATE))
        silences.append((start, gen.clock_samples()))
        # live, a slot is pushed by its deadline (running time + latency):
        # wait for the last silence's slots before ending the stream
        wait_clock(gen.clock_samples() + gen.latency_ns() * RATE // Gst_SECOND)
        gen.close()

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    frames = []
    ends = []
    for item in gen.frames():
        if isinstance(item, SegmentEnd):
            ends.append(item)
            print("agent: segment %d finished%s" % (
                item.segment, " (interrupted)" if item.interrupted else ""))
            continue
        assert isinstance(item, AvatarFrame)
        frames.append(item)
        if state["segment2"] is not None and item.segment == state["segment2"]:
            second_started.set()
    t.join()
    gen.stop()
    print("agent: %d frames (%d generated, the rest GAP repeats), %d stale "
          "frames after the barge-in" % (
              len(frames), sum(1 for f in frames if not f.repeat),
              gen.stale_after_clear))
    if not check:
        return 0

    failed = []
    pts = sorted(f.pts_ns for f in frames)
    slots = set(p // FRAME_NS for p in pts)
    first_slot = pts[0] // FRAME_NS if pts else 0
    for a, b in silences:
        lo = max(a * Gst_SECOND // RATE // FRAME_NS, first_slot)
        hi = b * Gst_SECOND // RATE // FRAME_NS
        if state["clear_pos"] is not None and a >= state["clear_pos"]:
            # a new stream's first 3 frames are dropped by the engine:
            # live, their slots get repeats only when the deadlines pass first
            lo = max(lo, -(-(gen.stream_t0 * Gst_SECOND // RATE + 3 * FRAME_NS) // FRAME_NS))
        want = [s for s in range(lo, hi)]
        got = sum(1 for s in want if s in slots)
        print("check: silence %.2f-%.2f s: %d of %d slots have a frame" % (
            a / RATE, b / RATE, got, len(want)))
        if want and got < 0.9 * len(want):
            failed.append("frames stopped in the silence %.2f-%.2f s" % (a / RATE, b / RATE))
    if gen.stale_after_clear > BLOCK_FRAMES:
        failed.append("%d frames of the interrupted speech after clear_buffer (> one block)"
                      % gen.stale_after_clear)
    seg3 = max(spoken)
    a, b = spoken[seg3]
    n3 = sum(1 for f in frames if f.segment == seg3)
    fresh3 = sum(1 for f in frames if f.segment == seg3 and not f.repeat)
    want3 = (b - a) * 25 // RATE
    print("check: utterance after the barge-in: %d frames of %d, %d generated"
          % (n3, want3, fresh3))
    if n3 < 0.9 * want3:
        failed.append("the utterance after the barge-in got %d frames of %d" % (n3, want3))
    # Live, slots are filled with repeats whatever the engine does, and on a
    # host much slower than real time every generated block can miss its
    # deadline: how many were fresh is reported, not required (CI shares
    # two cores with other tests).
    if fresh3 == 0:
        print("note: no frame of the utterance after the barge-in arrived in time")
    got_ends = {(e.segment, e.interrupted) for e in ends}
    for seg in spoken:
        if (seg, seg == state["segment2"]) not in got_ends:
            failed.append("segment %d: no end marker (interrupted=%s)" % (seg, seg == state["segment2"]))
    audio = sum(len(f.audio) for f in frames) // 2
    span = (pts[-1] + FRAME_NS) * RATE // Gst_SECOND if pts else 0
    print("check: %d samples of audio handed out with frames (time line: %d)"
          % (audio, span))
    # each sample once, silences included (a frame plays the audio since
    # the previous one); a clear cuts what had been pushed ahead
    if not 0.9 * span <= audio <= span:
        failed.append("%d samples of audio handed out for a %d sample time line"
                      % (audio, span))
    for f in failed:
        print("FAIL: " + f)
    if failed:
        return 1
    print("agent example: all checks passed")
    return 0


Gst_SECOND = 1000000000

if __name__ == "__main__":
    sys.exit(main())
