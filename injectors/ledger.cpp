// See ledger.hpp.
#include "injectors/ledger.hpp"
#include "core/json_limits.hpp"
#include "core/redact.hpp"
#include "core/time_text.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace syncstorm::injectors {

std::int64_t mono_now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::string wall_now_iso() { return utc_iso8601(std::chrono::system_clock::now()); }

ledger::ledger(std::string path) : ledger(std::move(path), O_CREAT) {}

ledger::ledger(std::string path, int flags) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
  if (fd_ < 0) {
    std::string why = errno == EEXIST  ? "found a file already there; expected to create it (a ledger is never adopted)"
                      : errno == ELOOP ? "found a symbolic link; expected a regular file"
                                       : std::string("cannot open: ") + std::strerror(errno);
    throw std::runtime_error("ledger " + path_ + ": " + why);
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("ledger " + path_ + ": found no regular file");
  }
  reserve();
}

ledger ledger::create(std::string path) { return ledger(std::move(path), O_CREAT | O_EXCL); }

ledger::ledger(ledger&& other) noexcept : path_(std::move(other.path_)), by_(std::move(other.by_)), fd_(other.fd_) {
  other.fd_ = -1;
}

void ledger::reserve() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return;
  const std::int64_t allocated = static_cast<std::int64_t>(st.st_blocks) * 512;
  if (allocated - st.st_size >= reserve_bytes / 2) return;
  // Best effort: on a full disk the reservation already made is what the appends use.
  (void)::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, st.st_size + reserve_bytes);
}

ledger::~ledger() {
  if (fd_ >= 0) ::close(fd_);
}

void ledger::append(nlohmann::json record) {
  if (!record.contains("mono_us")) record["mono_us"] = mono_now_us();
  if (!record.contains("at")) record["at"] = wall_now_iso();
  if (!record.contains("by")) record["by"] = by_;
  std::string line = redact::apply(record.dump()) + "\n";
  std::lock_guard lock(mu_);
  ::flock(fd_, LOCK_EX);
  std::size_t off = 0;
  std::string err;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = std::strerror(errno);
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  if (err.empty() && ::fsync(fd_) != 0) err = std::string("fsync: ") + std::strerror(errno);
  if (err.empty()) reserve();
  ::flock(fd_, LOCK_UN);
  if (!err.empty()) throw std::runtime_error("ledger " + path_ + ": cannot write: " + err);
}

bool ledger::try_append(nlohmann::json record) noexcept {
  try {
    append(std::move(record));
    return true;
  } catch (...) {
    return false;
  }
}

std::vector<const ledger_fault*> ledger_view::unreverted() const {
  std::vector<const ledger_fault*> out;
  for (const auto& f : faults)
    if (!f.reverted) out.push_back(&f);
  return out;
}

ledger_view read_ledger(const std::string& path) {
  ledger_view v;
  std::ifstream in(path);
  std::string line;
  auto find = [&](const std::string& id) -> ledger_fault* {
    for (auto& f : v.faults)
      if (f.id == id) return &f;
    return nullptr;
  };
  // A field of another type than the writers write ("ok": 1, "pid": "x", a float pid) makes the
  // whole line a bad line: never an exception in the reaper, never an out-of-range conversion
  // (found by fuzz/fuzz_ledger.cpp).
  auto typed = [](const nlohmann::json& j) {
    for (const char* k : {"step", "phase", "id", "fault", "kind", "error"})
      if (j.contains(k) && !j[k].is_string()) return false;
    for (const char* k : {"pid", "start_time", "ttl_mono_us"})
      if (j.contains(k) && !j[k].is_number_integer()) return false;
    if (j.contains("ok") && !j["ok"].is_boolean()) return false;
    return true;
  };
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = parse_bounded(line);  // a planted or corrupt line is a bad line, never deep recursion later
    if (j.is_discarded() || !j.is_object() || !typed(j)) {
      v.bad_lines.push_back(line);
      continue;
    }
    std::string step = j.value("step", "");
    if (step == "controller") {
      v.controller_pid = j.value("pid", 0L);
      v.controller_start = j.value("start_time", 0ULL);
      v.run_end = false;
      continue;
    }
    if (step == "run_end") {
      v.run_end = true;
      continue;
    }
    std::string id = j.value("id", "");
    if (id.empty()) continue;
    std::string phase = j.value("phase", "");
    ledger_fault* f = find(id);
    if (step == "apply" && phase == "intent") {
      if (!f) {
        v.faults.push_back({});
        f = &v.faults.back();
      }
      f->id = id;
      f->fault = j.value("fault", "");
      f->kind = j.value("kind", "");
      f->intent = j;
      f->reverted = false;
      f->ttl_mono_us = j.value("ttl_mono_us", std::int64_t{0});
      continue;
    }
    if (!f) continue;
    bool ok = j.value("ok", false);
    if (!ok && j.contains("error")) f->error = j.value("error", "");
    if (step == "apply" && phase == "done") {
      f->apply_done = true;
      f->apply_ok = ok;
      // The apply may have learned more about how to undo it (e.g. which pid it stopped).
      if (j.contains("undo")) f->intent["undo"] = j["undo"];
    } else if (step == "verify") {
      f->verified = ok;
    } else if (step == "revert" && phase == "done") {
      if (ok) f->reverted = true;
    } else if (step == "ttl") {
      f->ttl_mono_us = j.value("ttl_mono_us", f->ttl_mono_us);
    }
  }
  return v;
}

}  // namespace syncstorm::injectors
