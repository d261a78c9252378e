// The libpcap capture threads, the capture's configuration from a scenario, and validate's
// environment checks. See capture.hpp. The pcap handles and dumpers never leave this file.
#include "capture/capture.hpp"

#include "capture/pcap_files.hpp"
#include "core/scenario.hpp"
#include "core/spec.hpp"

#include <pcap/pcap.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace syncstorm::capture {
namespace {

namespace fs = std::filesystem;

std::int64_t realtime_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string interface_list() {
  std::string out;
  if (auto* ifs = if_nameindex()) {
    std::vector<std::string> names;
    for (auto* i = ifs; i->if_index != 0; ++i) names.emplace_back(i->if_name);
    if_freenameindex(ifs);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  }
  return out;
}

// The compile error of a BPF filter, or empty when it compiles (against Ethernet framing, what
// lo and the lab's bridge use).
std::string filter_error(const std::string& filter, int snaplen) {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, snaplen);
  if (!dead) return "pcap_open_dead failed";
  bpf_program prog{};
  std::string err;
  if (pcap_compile(dead, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    err = pcap_geterr(dead);
  else
    pcap_freecode(&prog);
  pcap_close(dead);
  return err;
}

double peak_rate(const nlohmann::json& load) {
  double peak = 0;
  for (const auto& ph : load.value("phases", nlohmann::json::array())) {
    if (ph.contains("rate")) peak = std::max(peak, rate_value(ph["rate"]));
    if (ph.contains("to")) peak = std::max(peak, rate_value(ph["to"]));
  }
  return peak;
}

}  // namespace

bool has_cap_net_raw() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    std::uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
    return caps & (1ull << 13);  // CAP_NET_RAW
  }
  return false;
}

std::vector<std::string> environment_problems(const nlohmann::json& doc) {
  std::vector<std::string> out;
  if (!doc.contains("capture") || doc["capture"].is_null()) return out;
  const auto& c = doc["capture"];
  if (!has_cap_net_raw()) {
    out.push_back(
        "scenario.capture: found a wire capture request, but this process lacks CAP_NET_RAW; expected to run as root "
        "or with the capability (e.g. sudo setcap cap_net_raw+ep $(command -v syncstorm))");
  }
  if (c.contains("interfaces") && c["interfaces"].is_array()) {
    for (std::size_t i = 0; i < c["interfaces"].size(); ++i) {
      const std::string name = c["interfaces"][i].get<std::string>();
      if (name == "any" || if_nametoindex(name.c_str()) != 0) continue;
      out.push_back("scenario.capture.interfaces[" + std::to_string(i) + "]: found " + nlohmann::json(name).dump() +
                    "; expected a network interface of this machine (" + interface_list() + ")");
    }
  }
  if (c.contains("filter") && c["filter"].is_string()) {
    std::string err = filter_error(c["filter"].get<std::string>(), c.value("snaplen", 128));
    if (!err.empty())
      out.push_back("scenario.capture.filter: found " + c["filter"].dump() +
                    "; expected a BPF filter libpcap compiles (" + err + ")");
  }
  return out;
}

std::uint64_t default_ring_bytes(const nlohmann::json& doc, int snaplen) {
  double requests = 0;
  for (const auto& l : doc.value("load", nlohmann::json::array())) {
    // Each model says how many requests its entry makes at its peak (scenario registry).
    double r = peak_rate(l);
    const load_model_info* m = scenario_registry::instance().find_model(l.value("model", ""));
    if (m && m->peak_requests) r = m->peak_requests(l, r);
    requests += r;
  }
  const double packets_per_s = requests * 16;
  const double frame = static_cast<double>(snaplen) + 64;
  const double want = packets_per_s * 2 * frame;
  const double lo = 16.0 * (1 << 20), hi = 256.0 * (1 << 20);
  return static_cast<std::uint64_t>(std::clamp(want, lo, hi));
}

capture_config capture_config_for(const nlohmann::json& doc, const nlohmann::json& lab_status,
                                  const std::vector<endpoint>& servers, const std::string& dir) {
  const nlohmann::json c = doc.value("capture", nlohmann::json::object());
  capture_config cfg;
  cfg.dir = dir;
  cfg.pcap = c.value("pcap", true);
  cfg.snaplen = c.value("snaplen", 128);
  if (c.contains("max_file")) cfg.max_file = size_value(c["max_file"]);
  cfg.ring = c.contains("ring") ? size_value(c["ring"]) : default_ring_bytes(doc, cfg.snaplen);
  const bool lab = !lab_status.is_null();
  if (lab) cfg.map = lab_wire_map(lab_status);
  for (const auto& e : servers) cfg.map.add_server(0, e);
  std::vector<std::string> names;
  const nlohmann::json ifs = c.value("interfaces", nlohmann::json("lab"));
  if (ifs.is_string()) {
    if (!lab)
      throw std::invalid_argument(
          "scenario.capture.interfaces: found \"lab\" but the target is not a lab; expected interface names");
    names = lab_interfaces(lab_status);
  } else {
    for (const auto& i : ifs) names.push_back(i.get<std::string>());
  }
  const std::string user_filter = c.value("filter", "");
  for (const auto& n : names) {
    std::string f = user_filter;
    if (!c.contains("filter") && lab) f = lab_default_filter(lab_status, n);
    // Not "inbound and …" on lo, though the kernel hands the ring each loopback packet twice
    // (libpcap drops the sent copy): libpcap filters the blocks already in the ring at
    // pcap_setfilter in user space, where `inbound` matches nothing, and the first block of
    // packets would be lost.
    cfg.interfaces.push_back({n, f});
  }
  return cfg;
}

std::vector<endpoint> resolve_url_endpoints(const std::vector<std::string>& urls) {
  std::vector<endpoint> out;
  for (const auto& url : urls) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) continue;
    const std::string scheme = url.substr(0, scheme_end);
    std::string rest = url.substr(scheme_end + 3);
    std::string authority = rest.substr(0, rest.find_first_of("/?#"));
    if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
    std::string host = authority, port = (scheme == "https" || scheme == "wss") ? "443" : "80";
    if (!authority.empty() && authority.front() == '[') {
      auto close = authority.find(']');
      host = authority.substr(1, close - 1);
      if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
    } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) continue;
    for (auto* a = res; a; a = a->ai_next) {
      char buf[NI_MAXHOST];
      if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) != 0) continue;
      if (auto addr = parse_address(buf)) {
        endpoint e{*addr, static_cast<std::uint16_t>(std::stoi(port))};
        if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
      }
    }
    freeaddrinfo(res);
  }
  return out;
}

// One interface: its handle, its files and its analysis, all used by its own thread only
// (the controller reads them after join).
struct capture_interface {
  std::string name, filter;
  pcap_t* handle = nullptr;
  int link = 0;
  std::string link_name, warning;
  bool pcap = false;
  std::string dir;
  pcap_dumper_t* dumper = nullptr;
  pcap_rotation rotation{0};
  struct file {
    std::string path;
    std::uint64_t packets = 0, bytes = 0;
  };
  std::vector<file> files;
  std::uint64_t packets = 0, bytes = 0;
  std::unique_ptr<wire_analyzer> analyzer;
  const std::atomic<std::int64_t>* origin = nullptr;
  std::thread thread;
  pcap_stat stats{};
  bool stats_ok = false;
  std::string error;
  std::atomic<bool> stopping{false};
  // The flush marker (see flush_tail): a UDP datagram to marker_port sent out on this interface.
  std::uint16_t marker_port = 0;
  int marker_fd = -1;
  int timeout_ms = 100;
  sockaddr_in marker_to{};
  bool marker_seen = false, tail_flushed = false;

  ~capture_interface() {
    if (marker_fd >= 0) ::close(marker_fd);
  }

  // A socket that sends the marker so that this interface's capture sees it: to 127.0.0.1 on lo
  // (and "any", which includes lo), else a limited broadcast bound to the device. False when the
  // interface cannot send one (no IPv4 on it, down): then the tail may stay in the ring.
  bool open_marker() {
    marker_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (marker_fd < 0) return false;
    marker_to.sin_family = AF_INET;
    marker_to.sin_port = htons(marker_port);
    if (name == "lo" || name == "any") {
      marker_to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      return true;
    }
    int one = 1;
    marker_to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
    return ::setsockopt(marker_fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) == 0 &&
           ::setsockopt(marker_fd, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(), static_cast<socklen_t>(name.size())) == 0;
  }

  // TPACKET_V3 hands a block over when it is full or its timeout passed, so at stop the last
  // packets may still sit in the kernel's current block, and on a busy wire "until it is quiet"
  // never comes. A marker sent out on the interface is a clean cut: once the capture reads its
  // own marker, everything before it has been read. Markers (every 50 ms until one is seen,
  // bounded by 3 s) are neither written nor counted. Without a marker socket: read for three
  // block timeouts.
  void flush_tail(int timeout_ms) {
    if (marker_fd < 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(3 * timeout_ms);
      while (std::chrono::steady_clock::now() < until) {
        int n = pcap_dispatch(handle, -1, &capture_interface::on_packet, reinterpret_cast<u_char*>(this));
        if (n < 0 && n != PCAP_ERROR_BREAK) break;
        if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return;
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    auto next_marker = std::chrono::steady_clock::now();
    static const char payload[] = "syncstorm-capture-flush";
    while (!marker_seen && std::chrono::steady_clock::now() < until) {
      if (std::chrono::steady_clock::now() >= next_marker) {
        ::sendto(marker_fd, payload, sizeof payload - 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&marker_to),
                 sizeof marker_to);
        next_marker = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
      }
      int n = pcap_dispatch(handle, -1, &capture_interface::on_packet, reinterpret_cast<u_char*>(this));
      if (n < 0 && n != PCAP_ERROR_BREAK) break;
      if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    tail_flushed = marker_seen;
  }

  void open_next_file() {
    if (dumper) pcap_dump_close(dumper);
    dumper = nullptr;
    std::string path = (fs::path(dir) / pcap_file_name(name, rotation.files())).string();
    FILE* fp = std::fopen(path.c_str(), "wb");
    if (!fp) throw std::runtime_error("capture " + name + ": cannot create " + path + ": " + std::strerror(errno));
    // Fewer, larger writes than stdio's default 4 KiB buffer.
    std::setvbuf(fp, nullptr, _IOFBF, 1 << 20);
    dumper = pcap_dump_fopen(handle, fp);
    if (!dumper) {
      std::fclose(fp);
      throw std::runtime_error("capture " + name + ": pcap_dump_fopen " + path + ": " + pcap_geterr(handle));
    }
    rotation.opened();
    files.push_back({path, 0, pcap_file_header_bytes});
  }

  static void on_packet(u_char* user, const pcap_pkthdr* h, const u_char* data) {
    auto* self = reinterpret_cast<capture_interface*>(user);
    self->packet(h, data);
  }

  void packet(const pcap_pkthdr* h, const u_char* data) {
    // Markers are sent only once stopping: no cost on the run's packets.
    if (stopping.load(std::memory_order_relaxed) && marker_port && udp_dst_port(link, data, h->caplen) == marker_port) {
      marker_seen = true;
      return;
    }
    ++packets;
    bytes += h->len;
    if (pcap) {
      if (rotation.needs_new_file(h->caplen)) open_next_file();
      pcap_dump(reinterpret_cast<u_char*>(dumper), h, data);
      rotation.wrote(h->caplen);
      ++files.back().packets;
      files.back().bytes = rotation.bytes();
    }
    const std::int64_t ts = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000 + h->ts.tv_usec;
    analyzer->on_frame(ts, origin->load(std::memory_order_relaxed), link, data, h->caplen, h->len);
  }

  void run() {
    try {
      if (pcap) open_next_file();
      while (!stopping.load()) {
        int n = pcap_dispatch(handle, -1, &capture_interface::on_packet, reinterpret_cast<u_char*>(this));
        if (n == PCAP_ERROR_BREAK) break;
        if (n == PCAP_ERROR) {
          error = std::string("pcap_dispatch: ") + pcap_geterr(handle);
          break;
        }
        analyzer->advance(realtime_us() - origin->load(std::memory_order_relaxed));
      }
      // What the kernel holds still.
      char errbuf[PCAP_ERRBUF_SIZE];
      pcap_setnonblock(handle, 1, errbuf);
      flush_tail(timeout_ms);
    } catch (const std::exception& e) {
      error = e.what();
    }
    analyzer->flush();
    stats_ok = pcap_stats(handle, &stats) == 0;
    if (dumper) {
      pcap_dump_close(dumper);
      dumper = nullptr;
    }
  }
};

}  // namespace syncstorm::capture

namespace syncstorm::capture {

struct capture_session::impl {
  capture_config cfg;
  int marker_reserve_fd = -1;  // holds 127.0.0.1:<marker port> so no one else uses it
  std::unique_ptr<wire_store> store;
  std::atomic<std::int64_t> origin{std::numeric_limits<std::int64_t>::max()};
  std::vector<std::unique_ptr<capture_interface>> ifs;
  bool stopped = false;

  ~impl() {
    if (marker_reserve_fd >= 0) ::close(marker_reserve_fd);
    for (auto& i : ifs) {
      if (i->dumper) pcap_dump_close(i->dumper);
      if (i->handle) pcap_close(i->handle);
    }
  }
};

namespace {

// A UDP port on 127.0.0.1 bound for the session's life: its flush markers go there.
int reserve_marker_port(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

// Opens and activates one interface; throws with the interface and libpcap's words.
void open_interface(capture_interface& i, const capture_config& cfg) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  i.handle = pcap_create(i.name.c_str(), errbuf);
  if (!i.handle) throw std::runtime_error("capture " + i.name + ": pcap_create: " + errbuf);
  pcap_set_snaplen(i.handle, cfg.snaplen);
  pcap_set_promisc(i.handle, 0);
  pcap_set_timeout(i.handle, cfg.timeout_ms);
  // Not immediate: immediate mode makes libpcap use TPACKET_V2; V3's blocks batch the wakeups.
  pcap_set_immediate_mode(i.handle, 0);
  pcap_set_buffer_size(i.handle, static_cast<int>(std::min<std::uint64_t>(cfg.ring, std::numeric_limits<int>::max())));
  int rc = pcap_activate(i.handle);
  if (rc < 0) {
    std::string why = rc == PCAP_ERROR_PERM_DENIED      ? "permission denied (needs CAP_NET_RAW)"
                      : rc == PCAP_ERROR_NO_SUCH_DEVICE ? "no such interface"
                                                        : pcap_geterr(i.handle);
    throw std::runtime_error("capture " + i.name + ": pcap_activate: " + why);
  }
  if (rc > 0) i.warning = pcap_statustostr(rc) + std::string(": ") + pcap_geterr(i.handle);
  i.link = pcap_datalink(i.handle);
  const char* ln = pcap_datalink_val_to_name(i.link);
  i.link_name = ln ? ln : std::to_string(i.link);
  if (!i.filter.empty()) {
    // The flush markers pass any filter.
    const std::string full =
        i.marker_port ? "(" + i.filter + ") or (udp dst port " + std::to_string(i.marker_port) + ")" : i.filter;
    bpf_program prog{};
    if (pcap_compile(i.handle, &prog, full.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
      throw std::runtime_error("capture " + i.name + ": filter " + nlohmann::json(i.filter).dump() + ": " +
                               pcap_geterr(i.handle));
    int set = pcap_setfilter(i.handle, &prog);
    pcap_freecode(&prog);
    if (set != 0) throw std::runtime_error("capture " + i.name + ": pcap_setfilter: " + pcap_geterr(i.handle));
  }
}

}  // namespace

capture_session::capture_session(capture_config cfg) : impl_(std::make_unique<impl>()) {
  impl_->cfg = std::move(cfg);
  auto& c = impl_->cfg;
  if (c.interfaces.empty()) throw std::invalid_argument("capture: no interface to capture on");
  if (c.pcap) {
    std::error_code ec;
    fs::create_directories(c.dir, ec);
    if (ec) throw std::runtime_error("capture: cannot create " + c.dir + ": " + ec.message());
  }
  impl_->store = std::make_unique<wire_store>(c.map);
  std::uint16_t marker_port = 0;
  impl_->marker_reserve_fd = reserve_marker_port(marker_port);
  for (const auto& ic : c.interfaces) {
    auto i = std::make_unique<capture_interface>();
    i->marker_port = impl_->marker_reserve_fd >= 0 ? marker_port : 0;
    i->timeout_ms = c.timeout_ms;
    if (i->marker_port && !i->open_marker()) {
      ::close(i->marker_fd);
      i->marker_fd = -1;
    }
    i->name = ic.name;
    i->filter = ic.filter;
    i->pcap = c.pcap;
    i->dir = c.dir;
    i->rotation = pcap_rotation(c.max_file);
    i->origin = &impl_->origin;
    wire_store* store = impl_->store.get();
    i->analyzer = std::make_unique<wire_analyzer>(
        c.map, store->resolution_us(),
        [store](std::int64_t step, const step_counts& counts) { store->add(step, counts); });
    impl_->ifs.push_back(std::move(i));
    open_interface(*impl_->ifs.back(), c);  // on a throw, impl's destructor closes the handles
  }
  try {
    for (auto& i : impl_->ifs) {
      capture_interface* p = i.get();
      p->thread = std::thread([p] { p->run(); });
    }
  } catch (...) {
    stop();  // the threads already started end before their interfaces close
    throw;
  }
}

capture_session::~capture_session() {
  try {
    stop();
  } catch (...) {
  }
}

void capture_session::set_origin(std::chrono::steady_clock::time_point run_start) {
  const auto since =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - run_start).count();
  impl_->origin.store(realtime_us() - since);
}

metrics_shard capture_session::snapshot_since(std::int64_t from_us) const {
  return impl_->store->snapshot().copy_since(from_us);
}

void capture_session::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& i : impl_->ifs) {
    i->stopping.store(true);
    pcap_breakloop(i->handle);
  }
  for (auto& i : impl_->ifs)
    if (i->thread.joinable()) i->thread.join();
}

metrics_shard capture_session::series() const { return impl_->store->snapshot(); }

std::uint64_t capture_session::dropped() const {
  std::uint64_t d = 0;
  for (const auto& i : impl_->ifs) d += i->stats_ok ? i->stats.ps_drop : 0;
  return d;
}

std::string capture_session::loss_reason() const {
  std::string out;
  for (const auto& i : impl_->ifs) {
    std::string one;
    if (!i->error.empty())
      one = i->name + ": capture failed: " + i->error;
    else if (!i->stats_ok)
      one = i->name + ": pcap_stats failed: " + pcap_geterr(i->handle);
    else if (i->stats.ps_drop > 0)
      one = i->name + ": " + std::to_string(i->stats.ps_drop) + " of " + std::to_string(i->stats.ps_drop + i->packets) +
            " packets dropped in the kernel ring";
    if (!one.empty()) out += (out.empty() ? "" : "; ") + one;
  }
  return out;
}

nlohmann::json capture_session::report() const {
  const auto& c = impl_->cfg;
  nlohmann::json ifs = nlohmann::json::array(), files = nlohmann::json::array();
  std::uint64_t packets = 0, dropped = 0, if_dropped = 0;
  for (const auto& i : impl_->ifs) {
    nlohmann::json f = nlohmann::json::array();
    for (const auto& x : i->files) {
      f.push_back({{"path", x.path}, {"packets", x.packets}, {"bytes", x.bytes}});
      files.push_back(x.path);
    }
    const auto& t = i->analyzer->totals();
    nlohmann::json j = {{"name", i->name},
                        {"filter", i->filter},
                        {"link_type", i->link_name},
                        {"packets", i->packets},
                        {"bytes", i->bytes},
                        {"tcp", t.tcp},
                        {"classified", t.classified},
                        {"before_start", t.before_start},
                        {"flows_untracked", i->analyzer->flows().untracked()},
                        {"tail_flushed", i->tail_flushed},
                        {"files", f}};
    if (i->stats_ok) {
      j["kernel"] = {{"received", i->stats.ps_recv}, {"dropped", i->stats.ps_drop}, {"if_dropped", i->stats.ps_ifdrop}};
      dropped += i->stats.ps_drop;
      if_dropped += i->stats.ps_ifdrop;
    }
    if (!i->warning.empty()) j["warning"] = i->warning;
    if (!i->error.empty()) j["error"] = i->error;
    packets += i->packets;
    ifs.push_back(j);
  }
  return {{"interfaces", ifs},
          {"packets", packets},
          {"dropped", dropped},
          {"if_dropped", if_dropped},
          {"files", files},
          {"pcap", c.pcap},
          {"snaplen", c.snaplen},
          {"ring_bytes", c.ring},
          {"max_file_bytes", c.max_file},
          {"resolution_ms", impl_->store->resolution_us() / 1000},
          {"endpoints", c.map.to_json()},
          {"complete", dropped == 0 && loss_reason().empty()}};
}

}  // namespace syncstorm::capture
