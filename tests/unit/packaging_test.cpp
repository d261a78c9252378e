// The Dockerfile's steps, exercised here since no Docker engine runs in CI: the runtime stage's
// `scripts/setup.sh --runtime` (idempotent, quiet when everything is present) and the build
// stage's configure with tests off. The build itself is what scripts/test.sh does.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

namespace t = syncstorm::test;

TEST(packaging, setup_script_is_idempotent_and_quiet_when_complete) {
  auto r = t::run("bash " + t::source_dir() + "/scripts/setup.sh 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "");  // everything is installed by now: nothing to say
  r = t::run("bash " + t::source_dir() + "/scripts/setup.sh --runtime 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "");
}

TEST(packaging, dockerfile_build_stage_configures_without_tests) {
  t::temp_dir d;
  auto r = t::run("cmake -S " + t::source_dir() + " -B " + d.str() +
                  " -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto targets = t::run("ninja -C " + d.str() + " -t targets all 2>&1");
  EXPECT_NE(targets.out.find("cli/syncstorm:"), std::string::npos);
  EXPECT_NE(targets.out.find("labstack/syncd:"), std::string::npos);
  EXPECT_EQ(targets.out.find("unit_"), std::string::npos);  // no test targets in the image build
}

TEST(packaging, dockerfile_uses_the_setup_script_and_builds_what_ships) {
  std::string df = t::read_file(t::source_dir() + "/Dockerfile");
  EXPECT_NE(df.find("RUN bash scripts/setup.sh\n"), std::string::npos);
  EXPECT_NE(df.find("setup.sh --runtime"), std::string::npos);
  EXPECT_NE(df.find("--target syncstorm syncd"), std::string::npos);
  EXPECT_NE(df.find("FROM debian:12-slim AS runtime"), std::string::npos);
}

// CI's format check (scripts/test.sh runs scripts/format.sh --check): it passes on a file laid out
// as .clang-format says and fails, naming the file, on one that is not.
TEST(packaging, format_check_fails_on_an_unformatted_file_and_passes_on_a_formatted_one) {
  t::temp_dir d;
  const std::string bad = d.str() + "/bad.cpp", good = d.str() + "/good.cpp";
  t::write_file(bad, "int  main( ){return 0;}\n");
  t::write_file(good, "int main() { return 0; }\n");
  const std::string script = "bash " + t::source_dir() + "/scripts/format.sh --check ";
  auto r = t::run(script + bad + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(bad), std::string::npos) << r.out;
  r = t::run(script + good + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(t::read_file(t::source_dir() + "/scripts/test.sh").find("bash scripts/format.sh --check"),
            std::string::npos);
}
