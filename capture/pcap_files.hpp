// pcap file naming and rotation: each interface writes `<dir>/<interface>-<NNN>.pcap` (NNN from
// 000, wider past 999), a new file once the next record would take the current one past
// `max_file` bytes (a file always holds at least one record, so a tiny max_file still makes
// progress). Sizes count what the pcap format writes: a 24-byte file header and, per packet, a
// 16-byte record header plus the captured bytes. Pure: the capture thread does the writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace syncstorm::capture {

inline constexpr std::uint64_t pcap_file_header_bytes = 24;
inline constexpr std::uint64_t pcap_record_header_bytes = 16;

// An interface name made safe for a file name ([A-Za-z0-9_.-], others become '_').
std::string file_safe(const std::string& interface);
// "<interface>-<index>.pcap" with the index zero-padded to 3 digits.
std::string pcap_file_name(const std::string& interface, std::size_t index);

class pcap_rotation {
 public:
  explicit pcap_rotation(std::uint64_t max_file_bytes) : max_(max_file_bytes) {}

  // Before writing a record of `caplen` captured bytes: must a new file be started first?
  bool needs_new_file(std::uint32_t caplen) const noexcept {
    return !open_ || (records_ > 0 && bytes_ + pcap_record_header_bytes + caplen > max_);
  }
  // A new file was opened (its header written).
  void opened() noexcept {
    open_ = true;
    ++files_;
    bytes_ = pcap_file_header_bytes;
    records_ = 0;
  }
  void wrote(std::uint32_t caplen) noexcept {
    bytes_ += pcap_record_header_bytes + caplen;
    ++records_;
  }
  std::size_t files() const noexcept { return files_; }        // opened so far
  std::uint64_t bytes() const noexcept { return bytes_; }      // in the current file
  std::uint64_t records() const noexcept { return records_; }  // in the current file

 private:
  std::uint64_t max_;
  bool open_ = false;
  std::size_t files_ = 0;
  std::uint64_t bytes_ = 0, records_ = 0;
};

}  // namespace syncstorm::capture
