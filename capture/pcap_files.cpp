// pcap file naming. See pcap_files.hpp.
#include "capture/pcap_files.hpp"

#include <cstdio>

namespace syncstorm::capture {

std::string file_safe(const std::string& interface) {
  std::string out = interface.empty() ? std::string("if") : interface;
  for (char& c : out) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) c = '_';
  }
  if (out == "." || out == "..") out = "_" + out;
  return out;
}

std::string pcap_file_name(const std::string& interface, std::size_t index) {
  char num[32];
  std::snprintf(num, sizeof num, "%03zu", index);
  return file_safe(interface) + "-" + num + ".pcap";
}

}  // namespace syncstorm::capture
