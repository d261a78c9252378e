// See reaper.hpp.
#include "injectors/reaper.hpp"

#include "process/runner.hpp"

#include "injectors/faults.hpp"
#include "injectors/files.hpp"
#include "injectors/targets.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

namespace syncstorm::injectors {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string run_hash(const std::string& run_dir) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : run_dir) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string abs_dir(const std::string& d) { return fs::absolute(d).lexically_normal().string(); }

std::string fault_list(const ledger_view& v) {
  std::string s;
  for (auto* f : v.unreverted()) {
    std::string t;
    for (const auto& x : f->intent.value("targets", json::array())) t += (t.empty() ? "" : ",") + x.value("name", "");
    s += (s.empty() ? "" : ", ") + f->kind + " " + (t.empty() ? f->fault : t);
  }
  return s;
}

bool controller_alive(const ledger_view& v) {
  if (!v.controller_pid || v.run_end) return false;
  return same_process(static_cast<pid_t>(*v.controller_pid), v.controller_start.value_or(0));
}

}  // namespace

std::string index_dir() {
  const char* e = std::getenv("SYNCSTORM_LEDGER_INDEX");
  return e && *e ? e : "/var/tmp/syncstorm/ledgers";
}

void index_add(const std::vector<std::string>& keys, const std::string& run_dir) {
  std::error_code ec;
  fs::create_directories(fs::path(index_dir()).parent_path(), ec);
  ::mkdir(index_dir().c_str(), 0700);
  std::string d = abs_dir(run_dir);
  for (const auto& k : keys) {
    std::string path = index_dir() + "/" + k + "@" + run_hash(d);
    (void)replace_file(path, d + "\n");  // best effort, as before
  }
}

void index_add_run(const std::string& run_dir) { index_add({"run"}, run_dir); }

bool index_has_run(const std::string& run_dir) {
  const std::string d = abs_dir(run_dir);
  const std::string path = index_dir() + "/run@" + run_hash(d);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) return false;
  std::ifstream in(path);
  std::string listed;
  std::getline(in, listed);
  return listed == d;
}

void index_remove(const std::string& run_dir) {
  std::string suffix = "@" + run_hash(abs_dir(run_dir));
  std::error_code ec;
  if (!fs::exists(index_dir(), ec)) return;
  for (auto& e : fs::directory_iterator(index_dir(), ec)) {
    std::string n = e.path().filename().string();
    if (n.size() > suffix.size() && n.ends_with(suffix)) fs::remove(e.path(), ec);
  }
}

std::string refuse_unreverted(const std::vector<std::string>& keys) {
  std::error_code ec;
  if (!fs::exists(index_dir(), ec)) return {};
  for (auto& e : fs::directory_iterator(index_dir(), ec)) {
    std::string n = e.path().filename().string();
    auto at = n.rfind('@');
    if (at == std::string::npos) continue;
    std::string key = n.substr(0, at);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) continue;
    std::ifstream in(e.path());
    std::string dir;
    std::getline(in, dir);
    ledger_view v = read_ledger(dir + "/ledger.jsonl");
    if (dir.empty() || !fs::exists(dir + "/ledger.jsonl") || v.unreverted().empty()) {
      fs::remove(e.path(), ec);
      continue;
    }
    std::string what = key.starts_with("lab-") ? "target lab " + key.substr(4) : "target " + key;
    if (controller_alive(v))
      return what + ": run " + dir + " is applying faults now (pid " + std::to_string(*v.controller_pid) +
             "); wait for it to end";
    return what + ": run " + dir + " left faults unreverted (" + fault_list(v) + "); run `syncstorm revert " + dir +
           "` first";
  }
  return {};
}

revert_outcome revert_from_ledger(ledger& l, const ledger_fault& f, client_control* clients) {
  revert_outcome o;
  json undo = f.intent.value("undo", json::array());
  // The revert goes ahead whether or not its records can be written (a full disk).
  l.try_append({{"step", "revert"}, {"phase", "intent"}, {"id", f.id}});
  step_result r = revert_steps(undo, clients);
  if (r.ok) {
    step_result v = verify_reverted_steps(undo);
    l.try_append({{"step", "verify_reverted"}, {"id", f.id}, {"ok", v.ok}, {"error", v.error}});
    if (!v.ok) r = v;
  }
  l.try_append({{"step", "revert"}, {"phase", "done"}, {"id", f.id}, {"ok", r.ok}, {"error", r.error}, {"did", r.did}});
  o.ok = r.ok;
  o.did = r.did.empty() ? "nothing to undo" : r.did;
  o.error = r.error;
  return o;
}

int revert_run(const std::string& run_dir, std::ostream& out, std::ostream& err) {
  std::string path = run_dir + "/ledger.jsonl";
  if (!fs::is_directory(run_dir)) {
    err << "RUN_DIR: found " << json(run_dir).dump() << " that is not a directory; expected a run directory\n";
    return 2;
  }
  if (!fs::exists(path)) {
    if (!fs::exists(run_dir + "/scenario.json")) {
      err << "RUN_DIR: found " << json(run_dir).dump()
          << " without scenario.json or ledger.jsonl; expected a run directory\n";
      return 2;
    }
    out << "nothing to revert (the run applied no fault)\n";
    index_remove(run_dir);
    return 0;
  }
  if (controller_alive(read_ledger(path))) {
    ledger_view now = read_ledger(path);
    err << "run " << run_dir << " is still running (controller pid " << *now.controller_pid
        << "); it reverts its own faults: stop it (SIGINT) or wait\n";
    return 3;
  }
  // One reverter at a time: a reaper still at work holds RUN_DIR/reaper.lock; wait for it.
  int lock = ::open((run_dir + "/reaper.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock >= 0 && ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    err << "waiting for the run's reaper to finish its reverts (RUN_DIR/reaper.lock)\n";
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (::flock(lock, LOCK_EX | LOCK_NB) != 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  struct closer {
    int fd;
    ~closer() {
      if (fd >= 0) ::close(fd);
    }
  } close_lock{lock};
  ledger_view v = read_ledger(path);
  if (controller_alive(v)) {
    err << "run " << run_dir << " is still running (controller pid " << *v.controller_pid
        << "); it reverts its own faults: stop it (SIGINT) or wait\n";
    return 3;
  }
  auto left = v.unreverted();
  if (left.empty()) {
    out << "nothing to revert\n";
    index_remove(run_dir);
    return 0;
  }
  if (!index_has_run(run_dir)) {
    err << "RUN_DIR: found a ledger with " << left.size() << " unreverted fault(s) that this host's ledger index ("
        << index_dir()
        << ") does not list; expected a run that syncstorm made on this host: its undo steps are not run\n";
    return 2;
  }
  ledger l(path);
  l.set_writer("revert");
  int rc = 0;
  for (auto* f : left) {
    auto o = revert_from_ledger(l, *f);
    if (o.ok)
      out << "reverted " << f->id << " (" << f->kind << "): " << o.did << "\n";
    else {
      err << "could not revert " << f->id << " (" << f->kind << "): " << o.error << "\n";
      rc = 3;
    }
  }
  if (rc == 0) index_remove(run_dir);
  return rc;
}

bool reaper_alive(const std::string& run_dir) {
  int fd = ::open((run_dir + "/reaper.lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the lock if this call took it
  return held;
}

int reaper_main(const std::string& run_dir, int ready_fd) {
  std::string path = run_dir + "/ledger.jsonl";
  if (!index_has_run(run_dir)) {
    std::cerr << wall_now_iso() << " reaper for " << run_dir << ": the ledger index (" << index_dir()
              << ") does not list this run: not a run of this host; exiting" << std::endl;
    return 2;
  }
  ledger l(path);
  l.set_writer("reaper");
  // Held for the reaper's life: `syncstorm revert` waits for it instead of reverting beside it.
  int lock = ::open((run_dir + "/reaper.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  // Running, and seen running (reaper_alive) from here on.
  if (ready_fd >= 0) {
    char c = 1;
    (void)!::write(ready_fd, &c, 1);
    ::close(ready_fd);
  }
  std::map<std::string, int> failures;
  auto log = [](const std::string& s) { std::cerr << wall_now_iso() << " " << s << std::endl; };
  log("reaper for " + run_dir + " (pid " + std::to_string(::getpid()) + ")");
  bool seen_controller = false;
  const auto began = std::chrono::steady_clock::now();
  for (;;) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      log("the ledger is gone (run directory removed); exiting");
      return 0;
    }
    ledger_view v = read_ledger(path);
    if (!v.controller_pid && !seen_controller && std::chrono::steady_clock::now() - began > std::chrono::seconds(30)) {
      log("no controller recorded in the ledger within 30 s; exiting");
      return 0;
    }
    if (v.controller_pid) seen_controller = true;
    bool alive = controller_alive(v);
    auto left = v.unreverted();
    if (v.run_end && left.empty()) {
      log("the run ended with everything reverted; exiting");
      return 0;
    }
    std::int64_t now = mono_now_us();
    bool gone = seen_controller && !alive;
    for (auto* f : left) {
      bool expired = f->ttl_mono_us > 0 && now >= f->ttl_mono_us;
      if (!gone && !expired) continue;
      if (failures[f->id] >= 30) continue;
      log(std::string(gone ? "controller gone" : "time-to-live passed") + ": reverting " + f->id + " (" + f->kind +
          ")");
      auto o = revert_from_ledger(l, *f);
      if (o.ok)
        log("reverted " + f->id + ": " + o.did);
      else {
        ++failures[f->id];
        log("could not revert " + f->id + " (attempt " + std::to_string(failures[f->id]) + "): " + o.error);
      }
    }
    if (gone) {
      ledger_view after = read_ledger(path);
      bool pending = false;
      for (auto* f : after.unreverted()) pending = pending || failures[f->id] < 30;
      if (after.unreverted().empty()) {
        index_remove(run_dir);
        log("everything reverted; exiting");
        return 0;
      }
      if (!pending) {
        log("giving up: " + fault_list(after) + " left unreverted; `syncstorm revert " + run_dir + "` retries");
        return 3;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string syncstorm_executable() {
  if (const char* bin = std::getenv("SYNCSTORM_BIN"); bin && *bin && ::access(bin, X_OK) == 0) return bin;
  return fs::read_symlink("/proc/self/exe").string();
}

void start_reaper(const std::string& run_dir) {
  std::string exe = syncstorm_executable();
  std::string dir = abs_dir(run_dir);
  std::string logp = dir + "/reaper.log";
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error(std::string("reaper: pipe: ") + std::strerror(errno));
  // A daemon (its own session, re-parented at once) that a Ctrl-C to the run's terminal cannot
  // stop; it writes one byte on fd 3 once it runs, before the first fault is applied.
  process::spawn_options o;
  o.argv = {exe, "reaper", dir, "--ready-fd", "3"};
  o.daemon = true;
  o.log_path = logp;
  o.ignore_signals = {SIGINT, SIGHUP};
  o.pass_fds = {{ready[1], 3}};
  try {
    process::spawn(o);
  } catch (const std::exception& e) {
    ::close(ready[0]);
    ::close(ready[1]);
    throw std::runtime_error(std::string("reaper: ") + e.what());
  }
  ::close(ready[1]);
  char c = 0;
  ssize_t n;
  do n = ::read(ready[0], &c, 1);
  while (n < 0 && errno == EINTR);
  ::close(ready[0]);
  if (n != 1) throw std::runtime_error("reaper: did not start (see " + logp + ")");
}

}  // namespace syncstorm::injectors
