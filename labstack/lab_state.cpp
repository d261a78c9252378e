// State file and events file of a lab (see lab_state.hpp).
#include "labstack/lab_state.hpp"

#include "core/json_limits.hpp"
#include "labstack/lab_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace syncstorm::lab {
namespace fs = std::filesystem;

std::string labs_root() {
  const char* r = std::getenv("SYNCSTORM_LAB_ROOT");
  return r && *r ? std::string(r) : std::string("/var/tmp/syncstorm");
}

std::string secure_labs_root() {
  const std::string root = labs_root();
  std::error_code ec;
  fs::create_directories(fs::path(root).parent_path(), ec);
  if (::mkdir(root.c_str(), 0711) == 0) return {};
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0)
    return root + ": cannot be created (" + std::strerror(errno) + "); expected a writable parent";
  if (S_ISLNK(st.st_mode)) return root + ": found a symbolic link; expected a directory (remove it)";
  if (!S_ISDIR(st.st_mode)) return root + ": found no directory; expected one (remove what is there)";
  if (st.st_uid != ::geteuid())
    return root + ": found it owned by uid " + std::to_string(st.st_uid) + "; expected uid " +
           std::to_string(::geteuid()) +
           " (this user): syncstorm trusts no state directory made by another user (remove it, or set $SYNCSTORM_LAB_ROOT)";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return root + ": found mode " + mode +
           ", writable by others; expected 0711 (check what is in it, then chmod 0711 " + root + ")";
  }
  if ((st.st_mode & 07777) != 0711) ::chmod(root.c_str(), 0711);
  return {};
}

std::string lab_dir(const std::string& id) { return labs_root() + "/lab-" + id; }
std::string state_path_of(const std::string& id) { return lab_dir(id) + "/state.json"; }

std::vector<std::string> list_lab_ids() {
  std::vector<std::string> ids;
  std::error_code ec;
  for (auto it = fs::directory_iterator(labs_root(), ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.rfind("lab-", 0) == 0 && it->is_directory(ec) && valid_lab_id(n.substr(4))) ids.push_back(n.substr(4));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool valid_lab_id(const std::string& id) {
  if (id.empty() || id.size() > 8) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

std::string random_lab_id() {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::mt19937_64 g(rd() ^ static_cast<std::uint64_t>(mono_us()));
  std::string id;
  for (int i = 0; i < 6; ++i) id += alphabet[g() % 36];
  return id;
}

bool state_file::exists() const { return fs::exists(path_); }

nlohmann::json state_file::read() const {
  std::ifstream in(path_);
  if (!in) throw std::runtime_error("lab state " + path_ + ": found no such file; expected a lab's state.json");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error("lab state " + path_ + ": found invalid JSON (" + e.what() +
                             "); expected a lab's state.json");
  }
}

nlohmann::json state_file::update(const std::function<void(nlohmann::json&)>& fn) const {
  const std::string lock_path = fs::path(path_).parent_path() / "state.lock";
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw std::runtime_error("lab state: cannot open lock " + lock_path + ": " + std::strerror(errno));
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  struct unlock_at_exit {
    int fd;
    ~unlock_at_exit() { ::close(fd); }
  } unlock{lock};

  nlohmann::json j = nlohmann::json::object();
  if (fs::exists(path_)) j = read();
  fn(j);
  const std::string text = j.dump(2) + "\n";
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("lab state: cannot write " + tmp + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw std::runtime_error("lab state: write " + tmp + ": " + std::strerror(err));
    }
    off += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0)
    throw std::runtime_error("lab state: rename " + tmp + ": " + std::strerror(errno));
  return j;
}

void append_event(const std::string& path, nlohmann::json event) {
  if (!event.contains("t_us")) event["t_us"] = unix_us();
  if (!event.contains("mono_us")) event["mono_us"] = mono_us();
  std::string line = event.dump() + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "lab events: cannot open %s: %s\n", path.c_str(), std::strerror(errno));
    return;
  }
  ssize_t n = ::write(fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) std::fprintf(stderr, "lab events: short write to %s\n", path.c_str());
  ::close(fd);
}

std::vector<nlohmann::json> read_events(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (...) {
    }
  }
  return out;
}

}  // namespace syncstorm::lab
