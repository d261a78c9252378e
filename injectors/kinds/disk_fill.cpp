// `disk_fill` (DESIGN §6): fill a volume to P% or to leave N bytes with one fallocated file
// (the lab's database volume, a local directory, or inside a container or pod), removed at revert.
#include "injectors/kinds/builtin.hpp"

#include "injectors/command.hpp"
#include "injectors/detail/fault_support.hpp"
#include "injectors/targets.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace syncstorm::injectors::kinds {
namespace {

namespace fs = std::filesystem;
using namespace detail;
using namespace std::chrono_literals;

struct disk_fill_settings final : fault_settings {
  std::string volume;                  // "db", a path, or empty (the lab's database)
  std::optional<double> percent;       // fill to this share
  std::optional<std::uint64_t> leave;  // or leave this many bytes free
};

// Bytes to allocate on a volume of `total` bytes with `avail` free so that it is filled to
// `percent` or leaves `leave` bytes.
std::int64_t fill_bytes(const disk_fill_settings& f, std::uint64_t total, std::uint64_t avail,
                        const std::string& where) {
  std::int64_t bytes;
  if (f.leave) {
    std::uint64_t leave = *f.leave;
    bytes = static_cast<std::int64_t>(avail) - static_cast<std::int64_t>(leave);
    if (bytes <= 0)
      throw fault_error("disk_fill: " + where + " has " + std::to_string(avail) +
                        " bytes free, already at most leave (" + std::to_string(leave) + ")");
  } else {
    double pc = f.percent.value_or(0);
    std::uint64_t used = total - avail;
    bytes = static_cast<std::int64_t>(static_cast<double>(total) * pc / 100.0) - static_cast<std::int64_t>(used);
    if (bytes <= 0)
      throw fault_error("disk_fill: " + where + " is already " +
                        std::to_string(100.0 * static_cast<double>(used) / static_cast<double>(total)) + "% full");
  }
  return bytes;
}

void prepare_disk_fill(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  const auto s = settings_of<disk_fill_settings>(f);
  const std::string volume = s->volume;
  std::string file = ".syncstorm-fill-" + sanitize(env.run_tag) + "-" + sanitize(p.id);
  if (f.target.contains("container") || f.target.contains("selector")) {
    resolved r = resolve(f, p.occurrence, env, "one");
    p.target_keys = {r.key};
    if (volume.empty() || volume.front() != '/')
      throw fault_error("disk_fill.volume: found " + json(volume).dump() +
                        "; expected an absolute path inside the container");
    for (const auto& n : r.names) {
      auto pre = exec_prefix(r, n);
      std::string path = (fs::path(volume) / file).string();
      std::int64_t bytes = -1;
      if (!env.dry_run) {
        auto argv = concat(pre, {"df", "-P", "-B1", volume});
        auto out = run_command(argv, 30s);
        if (!out.ok()) throw fault_error("disk_fill: " + out.error);
        auto lines = out.output;
        auto nl = lines.find('\n');
        auto w = words(nl == std::string::npos ? "" : lines.substr(nl + 1));
        if (w.size() < 4)
          throw fault_error("disk_fill: " + command_line(argv) + ": found \"" + lines + "\"; expected df -P output");
        bytes = fill_bytes(*s, std::stoull(w[1]), std::stoull(w[3]), n + ":" + volume);
      }
      p.targets.push_back({{"backend", r.backend}, {"name", n}, {"volume", volume}, {"file", path}, {"bytes", bytes}});
      auto fill = pre;
      fill.insert(fill.end(),
                  {"fallocate", "-l",
                   bytes >= 0 ? std::to_string(bytes) : std::string("<computed from df at fire time>"), path});
      p.apply.push_back(cmd(fill));
      auto rm = pre;
      rm.insert(rm.end(), {"rm", "-f", path});
      auto test = pre;
      test.insert(test.end(), {"test", "!", "-e", path});
      p.undo.push_back(cmd(rm, {{"ok_if", {"No such container", "NotFound"}},
                                {"verify", {{"argv", test}, {"expect", ""}, {"gone_ok", "No such"}}}}));
    }
    return;
  }
  std::string dir;
  if (volume.empty() || volume == "db") {
    const auto& lab = need_lab(env, "disk_fill.volume \"db\"");
    auto it = lab.data_dirs.find(lab.primary);
    dir = it != lab.data_dirs.end() ? it->second : lab.dir + "/" + lab.primary + "/data";
    p.target_keys = {"lab-" + lab.id};
    p.targets.push_back({{"backend", "lab"}, {"name", lab.primary}, {"lab", lab.id}, {"volume", dir}});
  } else {
    dir = volume;
    if (!own_lab_path(dir))
      if (std::string why = refuse_path(dir, env.safety); !why.empty()) throw fault_error("disk_fill.volume: " + why);
    p.target_keys = {"path-" + sanitize(fs::absolute(dir).lexically_normal().string())};
    p.targets.push_back({{"backend", "local"}, {"name", dir}, {"volume", dir}});
  }
  std::string path = (fs::path(dir) / file).string();
  std::int64_t bytes = -1;
  struct statvfs sv {};
  if (::statvfs(dir.c_str(), &sv) == 0) {
    std::uint64_t total = static_cast<std::uint64_t>(sv.f_blocks) * sv.f_frsize,
                  avail = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
    if (!env.dry_run) bytes = fill_bytes(*s, total, avail, dir);
  } else if (!env.dry_run) {
    throw fault_error("disk_fill.volume: found " + json(dir).dump() + " that cannot be read (" + std::strerror(errno) +
                      "); expected a directory on the volume to fill");
  }
  p.targets.back()["file"] = path;
  p.targets.back()["bytes"] = bytes;
  p.apply.push_back({{"op", "fill"}, {"path", path}, {"bytes", bytes}});
  p.verify.push_back({{"op", "file_allocated"}, {"path", path}, {"bytes", bytes}});
  p.undo.push_back({{"op", "remove_file"}, {"path", path}});
}

void check_disk_fill(const nlohmann::json& f, const reference_context& ctx, const std::string& p, spec::errors& out) {
  const nlohmann::json tgt = f.value("target", nlohmann::json::object());
  const bool remote = tgt.contains("container") || tgt.contains("selector");
  const std::string vol = str_or(f, "volume");
  if (remote && (vol.empty() || vol.front() != '/')) {
    out.push_back(p + ".volume: found " + (vol.empty() ? std::string("nothing") : nlohmann::json(vol).dump()) +
                  "; expected an absolute path inside the container or pod");
  } else if (!remote && (vol.empty() || vol == "db") && !ctx.lab) {
    out.push_back(p + ".volume: found " + (vol.empty() ? std::string("nothing") : nlohmann::json(vol).dump()) +
                  " without target.lab; expected a directory path on the volume to fill");
  } else if (!remote && !vol.empty() && vol != "db" && vol.front() != '/') {
    out.push_back(p + ".volume: found " + nlohmann::json(vol).dump() +
                  "; expected \"db\" or an absolute directory path");
  }
  if (f.contains("percent") == f.contains("leave"))
    out.push_back(
        p + ": found " +
        std::string(f.contains("percent") ? "both \"percent\" and \"leave\"" : "neither \"percent\" nor \"leave\"") +
        "; expected exactly one of \"percent\", \"leave\"");
}

}  // namespace

fault_kind disk_fill_kind() {
  fault_kind k = basic_kind(
      "disk_fill", "fill a volume to P% or to leave N bytes",
      {opt("volume", spec::string("\"db\" or a path on the volume to fill")),
       opt("percent", percent("fill the volume to this share")), opt("leave", size("leave this many bytes free"))},
      false);
  k.info.check = check_disk_fill;
  k.info.parse = [](const fault_entry& f, const std::string&) -> std::shared_ptr<const fault_settings> {
    auto s = std::make_shared<disk_fill_settings>();
    s->volume = f.fields.value("volume", "");
    if (f.fields.contains("percent")) s->percent = percent_value(f.fields["percent"]);
    if (f.fields.contains("leave")) s->leave = size_value(f.fields["leave"]);
    return s;
  };
  k.prepare = prepare_disk_fill;
  // A local directory is a target of its own (two runs filling it would undo each other).
  k.target_keys = [](const fault_entry& f, std::vector<std::string>& keys) {
    const std::string vol = f.fields.value("volume", "");
    if (!vol.empty() && vol != "db") keys.push_back("path-" + sanitize(fs::absolute(vol).lexically_normal().string()));
  };
  return k;
}

}  // namespace syncstorm::injectors::kinds
