"""liveavatarsrc in the shape conversational-agent frameworks drive an avatar.

LiveKit Agents' VideoGenerator (push_audio, clear_buffer, an iterator of
video frames with their audio and an end-of-segment marker) and Pipecat's
avatar processor (TTS audio frames in, image frames out, an interruption
frame clears the queue) both sit after text-to-speech.  This wraps

    appsrc ! liveavatarsrc ! videoconvert ! appsink

in that shape:

* push_audio(pcm) appends one TTS chunk (S16LE, 16 kHz, mono) to the
  current utterance (a "segment"); end_segment() closes it.
* The audio time line is the playback time line: each chunk gets the PTS
  where the previous one ended.  When nobody speaks, this wrapper feeds
  silence so the time line keeps up with the wall clock and the avatar keeps
  moving (the model's own idle motion).  The element does not do that by
  itself yet (issue 16, item 3: idle=silence); once it does, the pipeline
  can be made live and the feeder dropped.
* frames() yields AvatarFrame (RGB pixels, PTS, the audio that plays with
  it, the segment it belongs to) and SegmentEnd markers (LiveKit's
  playback_finished; interrupted=True after clear_buffer).
* clear_buffer() (barge-in) is a flush: queued audio and frames not yet out
  are dropped, the model stays loaded (no reload) and the next utterance
  starts a new stream on the element (docs/element.md, FLUSH_STOP).

The pipeline is not live (sync=false): frames come as fast as the engine
makes them and the application paces them, as LiveKit's AVSynchronizer does.
"""
import collections
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402

RATE = 16000                      # the element's input rate
BYTES_PER_SAMPLE = 2              # S16LE mono
FRAME_NS = Gst.SECOND // 25       # the element's output grid

AvatarFrame = collections.namedtuple(
    "AvatarFrame", "rgb width height pts_ns audio segment")
SegmentEnd = collections.namedtuple("SegmentEnd", "segment interrupted")


class AvatarVideoGenerator:
    """push_audio / end_segment / clear_buffer in, frames() out."""

    def __init__(self, model_path, reference_image, max_area=0, idle_fill=True,
                 idle_step_s=0.12):
        Gst.init(None)
        desc = (
            "appsrc name=audio format=time is-live=false block=false max-bytes=0 "
            "caps=audio/x-raw,format=S16LE,rate=%d,channels=1,layout=interleaved "
            "! liveavatarsrc name=avatar ! videoconvert ! video/x-raw,format=RGB "
            "! appsink name=video sync=false" % RATE)
        self.pipeline = Gst.parse_launch(desc)
        avatar = self.pipeline.get_by_name("avatar")
        avatar.set_property("model-path", model_path)
        avatar.set_property("reference-image", reference_image)
        avatar.set_property("max-area", max_area)
        self.avatar = avatar
        self.src = self.pipeline.get_by_name("audio")
        self.sink = self.pipeline.get_by_name("video")
        self.lock = threading.Lock()
        self.pos = 0                  # samples on the time line so far
        self.audio = bytearray()      # the time line's audio from audio_base on
        self.audio_base = 0
        self.yielded_to = 0           # audio handed out with frames up to here
        self.segments = []            # [id, start, end or None, ended]
        self.next_segment = 1
        self.markers = collections.deque()
        self.idle_fill = idle_fill
        self.idle_step = int(idle_step_s * RATE)
        self.t0 = None
        self.closed = False
        self.clears = 0
        self.cleared_at = 0
        self.stale_after_clear = 0    # frames of dropped audio seen after a clear

    # -- time line -------------------------------------------------------
    def clock_samples(self):
        """Samples of wall-clock time since start()."""
        return int((time.monotonic() - self.t0) * RATE)

    def _push_locked(self, pcm):
        n = len(pcm) // BYTES_PER_SAMPLE
        buf = Gst.Buffer.new_wrapped(bytes(pcm))
        buf.pts = self.pos * Gst.SECOND // RATE
        buf.duration = n * Gst.SECOND // RATE
        self.audio += pcm
        self.pos += n
        ret = self.src.push_buffer(buf)
        if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING):
            raise RuntimeError("appsrc refused audio: %s" % ret)

    def _idle_loop(self):
        # Keeps the time line up with the wall clock: silence where nobody speaks.
        while not self.closed:
            with self.lock:
                if not self.closed and self.clock_samples() > self.pos:
                    self._push_locked(bytes(self.idle_step * BYTES_PER_SAMPLE))
                    continue
            time.sleep(0.02)

    # -- VideoGenerator ---------------------------------------------------
    def start(self, timeout_s=600):
        """Loads the model (NULL->READY), then PLAYING.  Returns once the
        element reports the model ready, so the time line starts then."""
        if self.pipeline.set_state(Gst.State.READY) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError(self._bus_error() or "the model did not load")
        # The load may also finish after the state change (a loader thread):
        # wait for the element's own state to leave null/loading.
        deadline = time.monotonic() + timeout_s
        while self.avatar.get_property("state").value_nick in ("null", "loading"):
            err = self._bus_error()
            if err or time.monotonic() > deadline:
                raise RuntimeError(err or "the model did not load in %d s" % timeout_s)
            time.sleep(0.05)
        # Not live: PLAYING completes (prerolls) with the first frame, which
        # needs audio, so do not wait for it here.
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError(self._bus_error() or "the pipeline did not start")
        self.t0 = time.monotonic()
        if self.idle_fill:
            threading.Thread(target=self._idle_loop, daemon=True).start()

    def push_audio(self, pcm):
        """One TTS chunk (S16LE 16 kHz mono) of the current utterance."""
        with self.lock:
            if not self.segments or self.segments[-1][2] is not None:
                self.segments.append([self.next_segment, self.pos, None, False])
                self.next_segment += 1
            self._push_locked(pcm)
            return self.segments[-1][0]

    def end_segment(self):
        """The utterance is complete: a SegmentEnd follows its last frame."""
        with self.lock:
            if self.segments and self.segments[-1][2] is None:
                self.segments[-1][2] = self.pos

    def clear_buffer(self):
        """Barge-in: drop queued audio and frames not yet out; the model stays."""
        with self.lock:
            self.src.send_event(Gst.Event.new_flush_start())
            self.src.send_event(Gst.Event.new_flush_stop(False))
            for seg in self.segments:
                if not seg[3]:
                    if seg[2] is None or seg[2] > self.pos:
                        seg[2] = self.pos
                    seg[3] = True
                    self.markers.append(SegmentEnd(seg[0], True))
            self.cleared_at = self.pos
            self.yielded_to = self.pos
            self.clears += 1

    def close(self):
        """End of stream: what is queued is still rendered, then frames() ends."""
        with self.lock:
            self.closed = True
            if self.segments and self.segments[-1][2] is None:
                self.segments[-1][2] = self.pos
            self.src.end_of_stream()

    def stop(self):
        self.closed = True
        self.pipeline.set_state(Gst.State.NULL)

    def frames(self):
        """Yields AvatarFrame and SegmentEnd until the end of the stream."""
        while True:
            while self.markers:
                yield self.markers.popleft()
            sample = self.sink.try_pull_sample(100 * Gst.MSECOND)
            if sample is None:
                if self.sink.is_eos():
                    break
                err = self._bus_error()
                if err:
                    raise RuntimeError(err)
                continue
            buf = sample.get_buffer()
            st = sample.get_caps().get_structure(0)
            w, h = st.get_value("width"), st.get_value("height")
            ok, info = buf.map(Gst.MapFlags.READ)
            rgb = bytes(info.data)
            buf.unmap(info)
            pts = buf.pts
            first = pts * RATE // Gst.SECOND
            end = (pts + FRAME_NS) * RATE // Gst.SECOND
            ends = []
            with self.lock:
                if self.clears and first < self.cleared_at:
                    # made from audio a clear_buffer dropped: counted, not shown
                    self.stale_after_clear += 1
                    continue
                # the audio since the last frame (the stream's first frames
                # are dropped by the engine: their audio rides on the next)
                lo = max(self.yielded_to, self.audio_base)
                audio = bytes(self.audio[(lo - self.audio_base) * BYTES_PER_SAMPLE:
                                         (end - self.audio_base) * BYTES_PER_SAMPLE])
                self.yielded_to = max(self.yielded_to, end)
                # keep a little audio behind for safety, drop the rest
                drop = max(0, self.yielded_to - RATE - self.audio_base)
                del self.audio[:drop * BYTES_PER_SAMPLE]
                self.audio_base += drop
                segment = None
                for seg in self.segments:
                    if seg[1] <= first < (seg[2] if seg[2] is not None else self.pos):
                        segment = seg[0]
                    if not seg[3] and seg[2] is not None and end >= seg[2]:
                        seg[3] = True
                        ends.append(SegmentEnd(seg[0], False))
            yield AvatarFrame(rgb, w, h, pts, audio, segment)
            for e in ends:
                yield e

    def _bus_error(self):
        msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if msg:
            err, dbg = msg.parse_error()
            return "%s (%s)" % (err.message, dbg)
        return None
