// See redact.hpp.
#include "core/redact.hpp"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>
#include <mutex>
#include <streambuf>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncstorm::redact {
namespace {

struct registry {
  std::mutex mu;
  std::vector<std::string> secrets;
  std::vector<std::string> forms;  // longest first, so a form inside another never splits it
};

registry& reg() {
  static registry* r = new registry;  // never destroyed: console output may outlive statics
  return *r;
}

std::string url_encoded(std::string_view v, bool lower) {
  static const char* upper_hex = "0123456789ABCDEF";
  static const char* lower_hex = "0123456789abcdef";
  const char* hex = lower ? lower_hex : upper_hex;
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string base64(std::string_view bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    if (i + 1 < bytes.size()) out += table[(v >> 6) & 63];
  }
  return out;
}

namespace {

// Replaces every occurrence of each form (longest first) in place.
void replace_all(std::string& text, const std::vector<std::string>& forms) {
  for (const auto& f : forms) {
    std::size_t at = 0;
    while ((at = text.find(f, at)) != std::string::npos) {
      text.replace(at, f.size(), marker);
      at += marker.size();
    }
  }
}

// A streambuf that holds a line (or what a flush asks for) and writes it redacted to `to`.
// std::cout and std::cerr are written from several threads (the fault runner's occurrence
// threads log while the main thread reports progress): one mutex guards the held line, as the
// standard streams' own buffers are safe to share (ThreadSanitizer found the race, issue #23).
class redacting_buf final : public std::streambuf {
 public:
  explicit redacting_buf(std::streambuf* to) : to_(to) {}

 protected:
  int_type overflow(int_type ch) override {
    if (ch == traits_type::eof()) return traits_type::not_eof(ch);
    std::lock_guard lock(mu_);
    put(traits_type::to_char_type(ch));
    return ch;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard lock(mu_);
    for (std::streamsize i = 0; i < n; ++i) put(s[i]);
    return n;
  }
  int sync() override {
    std::lock_guard lock(mu_);
    emit();
    return to_->pubsync();
  }

 private:
  void put(char c) {
    line_.push_back(c);
    if (c == '\n' || line_.size() >= 8192) emit();
  }
  void emit() {
    if (line_.empty()) return;
    const std::string out = apply(line_);
    to_->sputn(out.data(), static_cast<std::streamsize>(out.size()));
    line_.clear();
  }
  std::streambuf* to_;
  std::mutex mu_;
  std::string line_;  // guarded by mu_
};

}  // namespace

std::vector<std::string> forms_of(std::string_view value) {
  std::vector<std::string> out;
  if (value.size() < min_secret) return out;
  out.emplace_back(value);
  out.push_back(url_encoded(value, false));
  out.push_back(url_encoded(value, true));
  const std::string json =
      nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.push_back(json.substr(1, json.size() - 2));
  // base64 at each alignment: the characters made of the value's bits only.
  for (std::size_t k = 0; k < 3; ++k) {
    const std::string enc = base64(std::string(k, '\0') + std::string(value));
    const std::size_t from = (8 * k + 5) / 6, to = 8 * (k + value.size()) / 6;
    if (to > from && to - from >= 6) out.push_back(enc.substr(from, to - from));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

// A number or a JSON literal is configuration, not a secret: replacing "8080" or "true" would
// break report.json's numbers and booleans.
bool plain_value(std::string_view v) {
  if (v == "true" || v == "false" || v == "null") return true;
  std::size_t i = v[0] == '-' ? 1 : 0;
  bool digit = false;
  for (; i < v.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(v[i])))
      digit = true;
    else if (v[i] != '.' && v[i] != 'e' && v[i] != 'E' && v[i] != '+' && v[i] != '-')
      return false;
  }
  return digit;
}

}  // namespace

void add_secret(std::string_view value) {
  if (value.size() < min_secret || plain_value(value)) return;
  registry& r = reg();
  std::lock_guard lock(r.mu);
  if (std::find(r.secrets.begin(), r.secrets.end(), value) != r.secrets.end()) return;
  r.secrets.emplace_back(value);
  for (auto& f : forms_of(value))
    if (std::find(r.forms.begin(), r.forms.end(), f) == r.forms.end()) r.forms.push_back(std::move(f));
  std::stable_sort(r.forms.begin(), r.forms.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string apply(std::string_view text) {
  std::string out(text);
  registry& r = reg();
  std::lock_guard lock(r.mu);
  if (!r.forms.empty()) replace_all(out, r.forms);
  return out;
}

bool active() {
  registry& r = reg();
  std::lock_guard lock(r.mu);
  return !r.secrets.empty();
}

void install_console() {
  static bool done = false;
  if (done) return;
  done = true;
  // Never destroyed: std::cout and std::cerr are flushed at exit, after statics may be gone.
  auto* out = new redacting_buf(std::cout.rdbuf());
  auto* err = new redacting_buf(std::cerr.rdbuf());
  std::cout.rdbuf(out);
  std::cerr.rdbuf(err);
}

void clear() {
  registry& r = reg();
  std::lock_guard lock(r.mu);
  r.secrets.clear();
  r.forms.clear();
}

}  // namespace syncstorm::redact
