// Fuzzes the fault proxy's HTTP request tracker (proxy/fault_proxy.hpp,
// `http_request_tracker`, framing on Beast's request parser): the relay (proxy/relay.cpp)
// feeds it each chunk it reads from a client on an HTTP path, forwards the segments marked
// `forward` and answers each dropped request itself (http_error). The client's bytes are
// untrusted.
// Input: byte 0 is the drop pattern (bit i % 8 drops request i), bytes 1-4 four chunk sizes
// (1..256, used in turn); the rest is the client's byte stream.
// Properties, per chunk: the segments tile the chunk from offset 0 without gaps or overlaps
// (to the end, or to the close answer's `after`, where the relay stops), adjacent segments
// differ in `forward`, every answer comes right after dropped bytes, in order, and nothing
// follows a close answer; once the tracker stops tracking, a chunk is forwarded whole. Across
// chunkings: the bytes forwarded and the answers given are the same as for the stream in one
// chunk (the relay reads whatever the kernel hands it).
#include "fuzz/fuzz_util.hpp"
#include "proxy/fault_proxy.hpp"

#include <array>

namespace {

using namespace syncstorm;
using tracker = proxy::http_request_tracker;

struct outcome {
  std::string forwarded;
  std::vector<bool> answers;  // close flags, in order
  std::uint64_t requests = 0;
};

// Feeds `stream` in chunks of `sizes` (cycled; empty: one chunk), checking each result.
outcome run(std::string_view stream, std::uint8_t drops, const std::vector<std::size_t>& sizes) {
  tracker t;
  outcome o;
  std::uint64_t asked = 0;
  auto decide = [&] { return ((drops >> (asked++ % 8)) & 1) != 0; };
  std::size_t turn = 0;
  while (!stream.empty()) {
    const std::size_t n = sizes.empty() ? stream.size() : std::min(sizes[turn++ % sizes.size()], stream.size());
    const bool was_tracking = t.tracking();
    const tracker::result r = t.feed(stream.data(), n, decide);
    std::size_t at = 0;
    for (std::size_t k = 0; k < r.segments.size(); ++k) {
      const auto& s = r.segments[k];
      if (s.offset != at || s.length == 0) fuzz::violated("segments do not tile the chunk");
      if (k > 0 && r.segments[k - 1].forward == s.forward) fuzz::violated("two adjacent segments with the same fate");
      if (s.forward) o.forwarded.append(stream.data() + s.offset, s.length);
      at += s.length;
    }
    const bool closed = !r.answers.empty() && r.answers.back().close;
    const std::size_t end = closed ? r.answers.back().after : n;
    if (at != end) fuzz::violated("segments cover " + std::to_string(at) + " of " + std::to_string(end) + " bytes");
    std::size_t last = 0;
    for (std::size_t k = 0; k < r.answers.size(); ++k) {
      const auto& a = r.answers[k];
      if (a.after < last || a.after > n) fuzz::violated("answers out of order or past the chunk");
      if (a.close && k + 1 != r.answers.size()) fuzz::violated("an answer after a close answer");
      // Adjacent dropped requests share one segment, so an answer may fall inside one.
      bool in_dropped = false;
      for (const auto& s : r.segments)
        in_dropped = in_dropped || (!s.forward && s.offset < a.after && a.after <= s.offset + s.length);
      if (!in_dropped) fuzz::violated("an answer after bytes that were not dropped");
      last = a.after;
      o.answers.push_back(a.close);
    }
    if (!was_tracking && (r.segments.size() != 1 || !r.segments[0].forward || !r.answers.empty()))
      fuzz::violated("a chunk after tracking stopped was not forwarded whole");
    stream.remove_prefix(n);
    if (closed) break;  // the relay answers, closes and reads no more
  }
  o.requests = t.requests();
  if (o.requests != asked) fuzz::violated("requests() differs from the decisions asked for");
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t drops = in.byte();
  std::vector<std::size_t> sizes;
  for (int k = 0; k < 4; ++k) sizes.push_back(std::size_t{in.byte()} + 1);
  const std::string_view stream = in.rest();
  const outcome chunked = run(stream, drops, sizes);
  const outcome whole = run(stream, drops, {});
  if (chunked.forwarded != whole.forwarded) fuzz::violated("the bytes forwarded depend on how the stream was chunked");
  if (chunked.answers != whole.answers) fuzz::violated("the answers depend on how the stream was chunked");
  if (chunked.requests != whole.requests) fuzz::violated("the request count depends on how the stream was chunked");
  return 0;
}
