// The terminal journal's file format, appends, replay and rewrite; see journal.hpp.
#include "loadgen/journal.hpp"

#include "core/json_limits.hpp"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace syncstorm::loadgen {
namespace {

using json = nlohmann::json;
constexpr std::uint32_t max_record = 16u << 20;

const std::array<std::uint32_t, 256>& crc_table() {
  static const auto t = [] {
    std::array<std::uint32_t, 256> a{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      a[i] = c;
    }
    return a;
  }();
  return t;
}

void put_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::string frame(const std::string& payload) {
  std::string rec(8 + payload.size(), '\0');
  put_u32(rec.data(), static_cast<std::uint32_t>(payload.size()));
  put_u32(rec.data() + 4, crc32(payload.data(), payload.size()));
  std::memcpy(rec.data() + 8, payload.data(), payload.size());
  return rec;
}

std::optional<sync_op> op_from(const json& j) {
  sync_op op;
  if (!j.contains("id") || !j["id"].is_string() || !j.contains("kind") || !j["kind"].is_string()) return std::nullopt;
  op.id = j["id"];
  op.stream = j.value("stream", "");
  op.seq = j.value("seq", std::int64_t{0});
  op.t_us = j.value("t_us", std::int64_t{0});
  const std::string k = j["kind"];
  if (k == "append")
    op.kind = op_kind::append;
  else if (k == "add")
    op.kind = op_kind::add;
  else if (k == "set")
    op.kind = op_kind::set;
  else
    return std::nullopt;
  op.key = j.value("key", "");
  op.delta = j.value("delta", 0.0);
  op.base_version = j.value("base_version", std::int64_t{0});
  if (j.contains("value")) op.value = j["value"];
  return op;
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) noexcept {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::string journal_op_payload(const sync_op& op) {
  json j = {{"t", "op"},     {"id", op.id},     {"stream", op.stream},
            {"seq", op.seq}, {"t_us", op.t_us}, {"kind", std::string(to_string(op.kind))}};
  if (!op.key.empty()) j["key"] = op.key;
  if (op.kind == op_kind::add) j["delta"] = op.delta;
  if (op.kind == op_kind::set) j["base_version"] = op.base_version;
  if (!op.value.is_null()) j["value"] = op.value;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

journal::journal(std::filesystem::path path, fsync_policy policy) : path_(std::move(path)), policy_(policy) {
  std::error_code ec;
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path(), ec);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("journal " + path_.string() + ": cannot open for writing: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
}

journal::~journal() {
  if (fd_ >= 0) ::close(fd_);
}

bool journal::append(const std::string& payload, bool force_sync) {
  if (fd_ < 0) return false;
  const std::string rec = frame(payload);
  if (!write_all(fd_, rec.data(), rec.size())) return false;
  size_ += rec.size();
  if (policy_ == fsync_policy::always || (force_sync && policy_ != fsync_policy::never)) return ::fdatasync(fd_) == 0;
  if (policy_ == fsync_policy::batch) dirty_ = true;
  return true;
}

bool journal::append_op(const sync_op& op) { return append(journal_op_payload(op), false); }

bool journal::append_acks(const std::vector<std::string>& ids) {
  if (ids.empty()) return true;
  const bool was_dirty = dirty_;
  const bool ok = append(json{{"t", "ack"}, {"ids", ids}}.dump(-1, ' ', false, json::error_handler_t::replace), false);
  dirty_ = was_dirty;  // acks need no batch fsync of their own
  return ok;
}

bool journal::append_rebase(const std::string& id, std::int64_t base_version) {
  const bool was_dirty = dirty_;
  const bool ok = append(json{{"t", "rebase"}, {"id", id}, {"base_version", base_version}}.dump(
                             -1, ' ', false, json::error_handler_t::replace),
                         false);
  dirty_ = was_dirty;
  return ok;
}

bool journal::append_rejects(const std::vector<std::string>& ids) {
  if (ids.empty()) return true;
  const bool was_dirty = dirty_;
  const bool ok =
      append(json{{"t", "reject"}, {"ids", ids}}.dump(-1, ' ', false, json::error_handler_t::replace), false);
  dirty_ = was_dirty;
  return ok;
}

bool journal::sync() {
  if (policy_ != fsync_policy::batch || !dirty_ || fd_ < 0) return true;
  dirty_ = false;
  return ::fdatasync(fd_) == 0;
}

int journal::begin_sync() {
  if (policy_ != fsync_policy::batch || !dirty_ || fd_ < 0) return -1;
  dirty_ = false;
  return ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
}

bool journal::rewrite(const std::vector<sync_op>& ops) {
  const auto tmp = std::filesystem::path(path_.string() + ".rewrite");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::string all;
  for (const auto& op : ops) all += frame(journal_op_payload(op));
  bool ok = write_all(fd, all.data(), all.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) ok = ::rename(tmp.c_str(), path_.c_str()) == 0;
  if (!ok) {
    ::unlink(tmp.c_str());
    return false;
  }
  if (path_.has_parent_path()) {
    const int dfd = ::open(path_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  size_ = all.size();
  dirty_ = false;
  return fd_ >= 0;
}

journal_replay journal::replay(const std::filesystem::path& path) {
  journal_replay r;
  std::ifstream in(path, std::ios::binary);
  if (!in) return r;
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  r.file_bytes = data.size();
  std::vector<sync_op> ops;
  std::unordered_map<std::string, std::size_t> index;
  std::unordered_set<std::string> acked, rejected;
  std::size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 8) {
      r.reason = "record header cut short at byte " + std::to_string(at);
      break;
    }
    const std::uint32_t len = get_u32(data.data() + at);
    const std::uint32_t crc = get_u32(data.data() + at + 4);
    if (len == 0 || len > max_record || len > data.size() - at - 8) {
      r.reason = "record at byte " + std::to_string(at) + " claims " + std::to_string(len) + " bytes; " +
                 std::to_string(data.size() - at - 8) + " remain";
      break;
    }
    const char* payload = data.data() + at + 8;
    if (crc32(payload, len) != crc) {
      r.reason = "record at byte " + std::to_string(at) + " fails its CRC";
      break;
    }
    const json j = parse_bounded(std::string_view(payload, len));
    if (j.is_discarded() || !j.is_object() || !j.contains("t")) {
      r.reason = "record at byte " + std::to_string(at) + " is not a journal record";
      break;
    }
    const std::string t = j["t"].is_string() ? j["t"].get<std::string>() : "";
    if (t == "op") {
      auto op = op_from(j);
      if (!op) {
        r.reason = "op record at byte " + std::to_string(at) + " lacks fields";
        break;
      }
      r.last_seq = std::max(r.last_seq, op->seq);
      ++r.ops;
      if (auto it = index.find(op->id); it != index.end())
        ops[it->second] = std::move(*op);
      else {
        index.emplace(op->id, ops.size());
        ops.push_back(std::move(*op));
      }
    } else if (t == "ack" || t == "reject") {
      if (!j.contains("ids") || !j["ids"].is_array()) {
        r.reason = t + " record at byte " + std::to_string(at) + " lacks ids";
        break;
      }
      for (const auto& id : j["ids"])
        if (id.is_string()) {
          if (t == "ack") {
            if (acked.insert(id.get<std::string>()).second) r.acked.push_back(id.get<std::string>());
          } else if (rejected.insert(id.get<std::string>()).second) {
            r.rejected.push_back(id.get<std::string>());
          }
        }
    } else if (t == "rebase") {
      if (auto it = index.find(j.value("id", "")); it != index.end())
        ops[it->second].base_version = j.value("base_version", std::int64_t{0});
    } else {
      r.reason = "record at byte " + std::to_string(at) + " has unknown type " + t;
      break;
    }
    ++r.records;
    at += 8 + len;
  }
  r.good_bytes = at;
  r.corrupt = at < data.size();
  if (!r.corrupt) r.reason.clear();
  for (auto& op : ops)
    if (!acked.count(op.id) && !rejected.count(op.id)) r.pending.push_back(std::move(op));
  return r;
}

std::optional<std::uint64_t> corrupt_file(const std::filesystem::path& path, std::size_t bytes, std::uint64_t seed) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0 || bytes == 0) return std::nullopt;
  bytes = std::min<std::size_t>(bytes, size);
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  const std::uint64_t offset = z % (size - bytes + 1);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string buf(bytes, '\0');
  bool ok = ::pread(fd, buf.data(), bytes, static_cast<off_t>(offset)) == static_cast<ssize_t>(bytes);
  for (auto& c : buf) c = static_cast<char>(c ^ 0xFF);
  ok = ok && ::pwrite(fd, buf.data(), bytes, static_cast<off_t>(offset)) == static_cast<ssize_t>(bytes);
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return std::nullopt;
  return offset;
}

}  // namespace syncstorm::loadgen
