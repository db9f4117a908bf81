// `moss report` on a sweep and on a run, rendered in headless Chromium.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "../support/test_files.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) { return moss::testing::fresh_temp_dir("moss-report", name, true); }

using moss::testing::slurp;

// Runs args with stdout/stderr sent to files; returns the exit status.
int run(const std::vector<std::string>& args, const std::string& out = "/dev/null", const std::string& err = "/dev/null") {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return 127;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

bool have(const std::string& tool) { return std::system(("command -v " + tool + " > /dev/null 2>&1").c_str()) == 0; }

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Loads the page in headless Chromium; the page's own script writes "plots-ok N/M" after
// measuring every plot's rendered SVG. Any uncaught script error shows in the console log.
void expect_renders(const std::string& html, std::size_t min_plots) {
  if (!have("chromium")) GTEST_SKIP() << "chromium not installed (apt-get install chromium)";
  const std::string d = temp_dir("chromium");
  const int rc = run({"timeout", "120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                      "--no-first-run", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--user-data-dir=" + d + "/profile", "--enable-logging=stderr", "--v=0",
                      "--dump-dom", "file://" + html},
                     d + "/dom.html", d + "/console.log");
  ASSERT_EQ(rc, 0) << slurp(d + "/console.log");
  const std::string dom = slurp(d + "/dom.html");
  const std::size_t plots = count(slurp(html), "<figure class=\"plot\"");
  EXPECT_GE(plots, min_plots);
  EXPECT_NE(dom.find("plots-ok " + std::to_string(plots) + "/" + std::to_string(plots)), std::string::npos)
      << "the page's check did not see every plot rendered";
  const std::string console = slurp(d + "/console.log");
  EXPECT_EQ(console.find("Uncaught"), std::string::npos) << console;
}

TEST(Report, SweepReportHasEveryPlotAndTable) {
  const std::string d = temp_dir("sweep");
  ASSERT_EQ(run({MOSS_BINARY, "sweep", std::string(MOSS_SOURCE_DIR) + "/scenarios/sweep-800m-bandwidth.json", "--out",
                 d + "/sweep", "--progress", "none"}),
            0);
  ASSERT_EQ(run({MOSS_BINARY, "report", d + "/sweep", "--deadline", "10d"}, d + "/out.txt", d + "/err.txt"), 0)
      << slurp(d + "/err.txt");
  const std::string md = slurp(d + "/sweep/report.md");
  for (const char* section : {"## Break-even bandwidth", "## Time and cost to target", "## Recommendation",
                              "## Assumptions", "## Network", "ASSUMED", "mos k40/v100", "time to loss",
                              "eta included", "compression error", "(K 0.", "busiest links", "exposed comm",
                              "Roofline efficiency factors"})
    EXPECT_NE(md.find(section), std::string::npos) << section;
  const std::string html = slurp(d + "/sweep/report.html");
  for (const char* plot : {"loss-vs-wallclock", "tokens-vs-bandwidth", "exposed-comm", "time-to-target", "cost-to-target",
                           "busiest-link", "link-utilisation"})
    EXPECT_NE(html.find(std::string("data-plot=\"") + plot + "\""), std::string::npos) << plot;
  EXPECT_EQ(html.find("src=\"http"), std::string::npos) << "the report must be self-contained";
  expect_renders(d + "/sweep/report.html", 7);
}

TEST(Report, RunDirectoryReport) {
  const std::string d = temp_dir("run");
  ASSERT_EQ(run({MOSS_BINARY, "run", std::string(MOSS_SOURCE_DIR) + "/scenarios/mos-800m-300mbps-mos.json", "--out",
                 d + "/run"}),
            0);
  ASSERT_EQ(run({MOSS_BINARY, "report", d + "/run"}), 0);
  const std::string md = slurp(d + "/run/report.md");
  for (const char* section : {"## Summary", "## Time and cost to target", "## Network", "## Assumptions", "tokens/s",
                              "compression error (kernels)", "node0->node1", "memory per GPU"})
    EXPECT_NE(md.find(section), std::string::npos) << section;
  const std::string html = slurp(d + "/run/report.html");
  for (const char* plot : {"loss-vs-wallclock", "link-utilisation", "memory"})
    EXPECT_NE(html.find(std::string("data-plot=\"") + plot + "\""), std::string::npos) << plot;
  expect_renders(d + "/run/report.html", 3);
}

// A sweep whose block switches simulation.backend to ns3: the report's packet-level table.
TEST(Report, Ns3BackendSweepHasPacketLevelTable) {
  const std::string d = temp_dir("ns3");
  ASSERT_EQ(run({MOSS_BINARY, "sweep", std::string(MOSS_SOURCE_DIR) + "/tests/sweep/ns3-backend-sweep.json", "--out",
                 d + "/sweep", "--progress", "none"}),
            0);
  if (slurp(d + "/sweep/summary.jsonl").find("\"backend\":\"ns3\"") == std::string::npos)
    GTEST_SKIP() << "moss built without ns-3";
  ASSERT_EQ(run({MOSS_BINARY, "report", d + "/sweep"}, d + "/out.txt", d + "/err.txt"), 0) << slurp(d + "/err.txt");
  const std::string md = slurp(d + "/sweep/report.md");
  for (const char* text : {"Packet-level (ns-3) points", "mean ns-3 / analytic", "retransmissions / step", "backend=ns3"})
    EXPECT_NE(md.find(text), std::string::npos) << text;
  expect_renders(d + "/sweep/report.html", 4);
}

TEST(Report, MissingDirectoryIsInputError) {
  EXPECT_EQ(run({MOSS_BINARY, "report", "/nonexistent/moss-dir"}), 2);
}

}  // namespace
