// JSON-lines event log and the dropped-id bug log (see log.hpp).
#include "syncd/log.hpp"

#include "core/time_text.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace syncstorm::syncd {
namespace {

std::mutex log_mutex;
std::string pod_name = "syncd";
int bug_fd = 2;
bool bug_to_stderr = true;

std::string timestamp() { return utc_iso8601(std::chrono::system_clock::now(), 6); }

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void log_init(std::string pod, const std::string& bug_log_path) {
  pod_name = std::move(pod);
  if (!bug_log_path.empty()) {
    int fd = ::open(bug_log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("--bug-log: cannot open " + bug_log_path + ": " + std::strerror(errno));
    bug_fd = fd;
    bug_to_stderr = false;
  }
}

void log_event(std::string_view event, const nlohmann::json& fields, std::string_view level) {
  nlohmann::json line = {{"ts", timestamp()}, {"level", level}, {"pod", pod_name}, {"event", event}};
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::lock_guard lock(log_mutex);
  write_all(2, text);
}

void log_dropped(const std::vector<std::string>& ids, std::string_view what) {
  if (ids.empty()) return;
  std::string text;
  for (const auto& id : ids) {
    if (bug_to_stderr) text += what;
    text += id;
    text.push_back('\n');
  }
  std::lock_guard lock(log_mutex);
  write_all(bug_fd, text);
}

}  // namespace syncstorm::syncd
