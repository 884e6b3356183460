"""liveavatarsrc in the shape conversational-agent frameworks drive an avatar.

LiveKit Agents' VideoGenerator (push_audio, clear_buffer, an iterator of
video frames with their audio and an end-of-segment marker) and Pipecat's
avatar processor (TTS audio frames in, image frames out, an interruption
frame clears the queue) both sit after text-to-speech.  This wraps

    appsrc is-live=true ! liveavatarsrc idle=silence ! videoconvert ! appsink

in that shape:

* push_audio(pcm) appends one TTS chunk (S16LE, 16 kHz, mono) to the
  current utterance (a "segment"); end_segment() closes it.
* The pipeline is live, as these plugins are: appsrc is-live=true and
  every chunk is timestamped on the pipeline's running time.  An utterance
  starts at the running time it arrives (or where the previous one ends,
  TTS being faster than real time), so a frame's PTS says which audio plays
  with it.  Nothing is pushed between utterances: liveavatarsrc's
  idle=silence feeds silence on the clock when upstream sends nothing for
  idle-timeout, so the avatar keeps moving (the model's own idle motion),
  and every 40 ms slot gets a buffer in any case (a GAP repeat when the
  engine is late).  A 40 ms silence "anchor" at start and after a
  clear_buffer only gives the element's new stream its first timestamp:
  it idles and fills slots only once a stream has one.
* frames() yields AvatarFrame (RGB pixels, PTS, the audio that plays with
  it, the segment it belongs to) and SegmentEnd markers (LiveKit's
  playback_finished; interrupted=True after clear_buffer).
* clear_buffer() (barge-in) is a flush: queued audio and frames not yet out
  are dropped, the model stays loaded (no reload) and the next utterance
  starts a new stream on the element (docs/element.md, FLUSH_STOP).

appsink sync=false: the element already pushes each slot by its deadline
(running time + latency); a player paces frames by PTS, as LiveKit's
AVSynchronizer does.
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
    "AvatarFrame", "rgb width height pts_ns audio segment repeat")
SegmentEnd = collections.namedtuple("SegmentEnd", "segment interrupted")


class AvatarVideoGenerator:
    """push_audio / end_segment / clear_buffer in, frames() out."""

    def __init__(self, model_path, reference_image, max_area=0):
        Gst.init(None)
        desc = (
            "appsrc name=audio format=time is-live=true do-timestamp=false "
            "block=false max-bytes=0 "
            "caps=audio/x-raw,format=S16LE,rate=%d,channels=1,layout=interleaved "
            "! liveavatarsrc name=avatar idle=silence ! videoconvert "
            "! video/x-raw,format=RGB ! appsink name=video sync=false async=false" % RATE)
        self.pipeline = Gst.parse_launch(desc)
        avatar = self.pipeline.get_by_name("avatar")
        avatar.set_property("model-path", model_path)
        avatar.set_property("reference-image", reference_image)
        avatar.set_property("max-area", max_area)
        self.avatar = avatar
        self.src = self.pipeline.get_by_name("audio")
        self.sink = self.pipeline.get_by_name("video")
        self.lock = threading.Lock()
        self.pos = 0                  # end of the audio pushed, samples of running time
        self.audio = bytearray()      # the time line's audio from audio_base on
        self.audio_base = 0
        self.yielded_to = 0           # audio handed out with frames up to here
        self.segments = []            # [id, start, end or None, ended]
        self.next_segment = 1
        self.markers = collections.deque()
        self.closed = False
        self.clears = 0
        self.cleared_at = 0           # running time (samples) of the last clear
        self.stream_t0 = 0            # first timestamp (samples) of the element's stream
        self.old_stream = False       # a clear happened, the new stream's first
        #                               frame (DISCONT) is not out yet
        self.stale_after_clear = 0    # frames of dropped audio seen after a clear

    # -- time line -------------------------------------------------------
    def clock_samples(self):
        """The pipeline's running time, in samples."""
        clock = self.pipeline.get_clock()
        if clock is None:
            return 0
        rt = clock.get_time() - self.pipeline.get_base_time()
        return max(0, rt) * RATE // Gst.SECOND

    def _push_locked(self, pcm):
        n = len(pcm) // BYTES_PER_SAMPLE
        buf = Gst.Buffer.new_wrapped(bytes(pcm))
        now = self.clock_samples()
        if now > self.pos:
            # Nobody spoke since pos: the element filled that with its idle
            # silence; this audio plays from now on (a jump: DISCONT).
            # The wrapper's own copy of the time line gets the zeros.
            self.audio += bytes((now - self.pos) * BYTES_PER_SAMPLE)
            self.pos = now
            buf.set_flags(Gst.BufferFlags.DISCONT)
        buf.pts = self.pos * Gst.SECOND // RATE
        buf.duration = n * Gst.SECOND // RATE
        self.audio += pcm
        self.pos += n
        ret = self.src.push_buffer(buf)
        if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING):
            raise RuntimeError("appsrc refused audio: %s" % ret)

    def _anchor_locked(self):
        # A new stream on the element idles only once it has a first
        # timestamp: 40 ms of silence at the running time gives it one.
        self._push_locked(bytes(FRAME_NS * RATE // Gst.SECOND * BYTES_PER_SAMPLE))
        self.stream_t0 = self.pos - FRAME_NS * RATE // Gst.SECOND

    # -- VideoGenerator ---------------------------------------------------
    def start(self, timeout_s=600):
        """Loads the model (NULL->READY), then PLAYING.  Returns once the
        element reports the model ready and the pipeline plays."""
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
        # Live: PLAYING needs no preroll (NO_PREROLL), the clock runs from here.
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError(self._bus_error() or "the pipeline did not start")
        ret, cur, _ = self.pipeline.get_state(10 * Gst.SECOND)
        if cur != Gst.State.PLAYING:
            raise RuntimeError(self._bus_error() or "the pipeline is not PLAYING (%s)" % ret)
        with self.lock:
            self._anchor_locked()

    def push_audio(self, pcm):
        """One TTS chunk (S16LE 16 kHz mono) of the current utterance."""
        with self.lock:
            if not self.segments or self.segments[-1][2] is not None:
                # the segment starts where its first chunk lands
                start = max(self.pos, self.clock_samples())
                self.segments.append([self.next_segment, start, None, False])
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
            # The new stream on the element goes on from now, or from the
            # last frame already handed out if that is ahead (frames of
            # speech pushed ahead of the clock): the time line never
            # overlaps.  The audio pushed beyond that is gone.
            now = max(self.clock_samples(), self.yielded_to)
            for seg in self.segments:
                if not seg[3]:
                    if seg[2] is None or seg[2] > now:
                        seg[2] = max(seg[1], now)
                    seg[3] = True
                    self.markers.append(SegmentEnd(seg[0], True))
            if self.pos > now:
                del self.audio[max(0, now - self.audio_base) * BYTES_PER_SAMPLE:]
            else:
                self.audio += bytes((now - self.pos) * BYTES_PER_SAMPLE)
            self.pos = now
            self.cleared_at = now
            self.old_stream = True
            self.clears += 1
            self._anchor_locked()

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
            pts = buf.pts
            first = pts * RATE // Gst.SECOND
            end = (pts + FRAME_NS) * RATE // Gst.SECOND
            ends = []
            with self.lock:
                if self.old_stream:
                    # After a clear, the element's new stream starts with a
                    # DISCONT buffer; what comes before it, or earlier than
                    # the clear, was made from the dropped audio: counted,
                    # not shown.
                    if buf.has_flags(Gst.BufferFlags.DISCONT) and first >= self.cleared_at:
                        self.old_stream = False
                    else:
                        self.stale_after_clear += 1
                        continue
                elif self.clears and first < self.cleared_at:
                    self.stale_after_clear += 1
                    continue
                # the audio since the last frame (the stream's first frames
                # are dropped by the engine: their audio rides on the next)
                lo = max(self.yielded_to, self.audio_base)
                hi = max(lo, min(end, self.pos))
                audio = bytes(self.audio[(lo - self.audio_base) * BYTES_PER_SAMPLE:
                                         (hi - self.audio_base) * BYTES_PER_SAMPLE])
                # idle: beyond what was pushed the element fed silence
                audio += bytes(max(0, end - hi) * BYTES_PER_SAMPLE)
                self.yielded_to = max(self.yielded_to, end)
                # keep a little audio behind for safety, drop the rest
                drop = max(0, min(self.yielded_to - RATE - self.audio_base,
                                  len(self.audio) // BYTES_PER_SAMPLE))
                del self.audio[:drop * BYTES_PER_SAMPLE]
                self.audio_base += drop
                segment = None
                for seg in self.segments:
                    if seg[1] <= first < (seg[2] if seg[2] is not None else self.pos):
                        segment = seg[0]
                    if not seg[3] and seg[2] is not None and end >= seg[2]:
                        seg[3] = True
                        ends.append(SegmentEnd(seg[0], False))
            ok, info = buf.map(Gst.MapFlags.READ)
            rgb = bytes(info.data)
            buf.unmap(info)
            yield AvatarFrame(rgb, w, h, pts, audio, segment,
                              buf.has_flags(Gst.BufferFlags.GAP))
            for e in ends:
                yield e

    def latency_ns(self):
        """The pipeline's minimum latency: how long after its running time a
        slot's buffer is due."""
        # asked of the element (appsink sync=false takes no part in latency)
        q = Gst.Query.new_latency()
        if not self.avatar.get_static_pad("src").query(q):
            return 0
        _live, lo, _hi = q.parse_latency()
        return lo

    def _bus_error(self):
        msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if msg:
            err, dbg = msg.parse_error()
            return "%s (%s)" % (err.message, dbg)
        return None
