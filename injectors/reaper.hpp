// Undo that survives the controller (DESIGN §6): the reaper, `syncstorm revert`, and the index
// of runs that left faults unreverted.
//
// The reaper is `syncstorm reaper RUN_DIR` started detached (double fork, setsid, its own log
// RUN_DIR/reaper.log) before a run's first fault. Every 100 ms it replays RUN_DIR/ledger.jsonl:
// an occurrence whose time-to-live passed is reverted; when the controller recorded in the
// ledger is gone (dead, a zombie, or its pid reused) every unreverted occurrence is reverted and
// the reaper exits; it also exits when the ledger says run_end with nothing left. `syncstorm
// revert RUN_DIR` does the same once, by hand.
//
// Index: /var/tmp/syncstorm/ledgers/<target key>@<hash of the run dir> holds the run dir
// (one file per target key a run touched), written before a fault is applied and removed once
// the run has nothing unreverted. A run refuses to start while an indexed run still has
// unreverted faults on one of its target keys.
#pragma once

#include "injectors/client_control.hpp"
#include "injectors/ledger.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace syncstorm::injectors {

std::string index_dir();  // $SYNCSTORM_LEDGER_INDEX or /var/tmp/syncstorm/ledgers
void index_add(const std::vector<std::string>& keys, const std::string& run_dir);
void index_remove(const std::string& run_dir);
// The index's "run" entry: written when the controller creates the run's ledger, removed when the
// run leaves nothing unreverted. `revert` and the reaper act only on a ledger whose run has one
// (the index directory is 0700 under the 0711 state directory: only this host's syncstorm
// writes there), so a ledger planted anywhere else never gets its undo steps run (issue #24).
void index_add_run(const std::string& run_dir);
bool index_has_run(const std::string& run_dir);
// One line naming the first run that blocks `keys` and the command that clears it, or empty.
// Index entries of runs that have nothing left (or whose ledger is gone) are removed on the way.
std::string refuse_unreverted(const std::vector<std::string>& keys);

// Reverts one occurrence from its ledger record (revert intent, undo steps, verify_reverted,
// outcome), as `by`. Returns the outcome.
struct revert_outcome {
  bool ok = true;
  std::string did, error;
};
revert_outcome revert_from_ledger(ledger& l, const ledger_fault& f, client_control* clients = nullptr);

// `syncstorm revert RUN_DIR`: prints what it reverted or "nothing to revert"; returns the §9
// exit code (0 done, 2 not a run directory, 3 something could not be reverted or the run's
// controller is still alive).
int revert_run(const std::string& run_dir, std::ostream& out, std::ostream& err);

// The reaper's loop (the hidden `syncstorm reaper` subcommand). Writes one byte to `ready_fd`
// (when >= 0) once it holds RUN_DIR/reaper.lock, which it holds for its life. Returns its exit code.
int reaper_main(const std::string& run_dir, int ready_fd = -1);

// Whether a reaper of run_dir is running: RUN_DIR/reaper.lock is held (flock). No pid to be
// reused, and a reaper stopped (SIGSTOP) still counts as alive: it resumes where it was.
bool reaper_alive(const std::string& run_dir);

// Starts the reaper for run_dir, detached from this process (double fork + setsid), running
// this executable (/proc/self/exe). Throws std::runtime_error when it cannot start.
void start_reaper(const std::string& run_dir);

// The syncstorm executable the reaper and the run's proxy are started from: $SYNCSTORM_BIN when
// it names an executable file (a program that links the engine, such as a test, is not
// syncstorm itself), else this process's own executable.
std::string syncstorm_executable();

}  // namespace syncstorm::injectors
