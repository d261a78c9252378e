// Unix control-socket client (see control_socket.hpp).
#include "process/control_socket.hpp"

#include "core/json_limits.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace syncstorm::process {

std::string unix_exchange(const std::string& socket_path, const std::string& request, std::chrono::milliseconds timeout,
                          const std::string& what, bool until_newline) {
  const std::string who = what + " " + socket_path;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error(who + ": socket: " + std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_fd{fd};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof sa.sun_path) throw std::runtime_error(who + ": path too long");
  std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw std::runtime_error(who + ": connect: " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = [&](short ev) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, ev, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0)
      throw std::runtime_error(who + ": no answer within " + std::to_string(timeout.count()) + " ms");
  };
  std::size_t off = 0;
  while (off < request.size()) {
    wait(POLLOUT);
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) throw std::runtime_error(who + ": send: " + std::strerror(errno));
    off += static_cast<std::size_t>(n);
  }
  std::string answer;
  char buf[16384];
  while (!until_newline || answer.find('\n') == std::string::npos) {
    wait(POLLIN);
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) throw std::runtime_error(who + ": recv: " + std::strerror(errno));
    answer.append(buf, static_cast<std::size_t>(n));
  }
  return answer;
}

nlohmann::json unix_json_request(const std::string& socket_path, const nlohmann::json& request,
                                 std::chrono::milliseconds timeout) {
  const std::string answer = unix_exchange(socket_path, request.dump() + "\n", timeout, "control", true);
  try {
    nlohmann::json j = parse_bounded(std::string_view(answer).substr(0, answer.find('\n')));
    if (j.is_discarded()) throw std::runtime_error("not JSON");
    return j;
  } catch (const std::exception&) {
    throw std::runtime_error("control " + socket_path + ": found answer \"" + answer.substr(0, 200) +
                             "\"; expected one JSON line");
  }
}

}  // namespace syncstorm::process
