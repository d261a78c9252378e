// The run's outcome (DESIGN §9): which of pass, fail, inconclusive, aborted or error, its exit
// code and the one-line reason, from what happened. When several hold, the first of this
// precedence wins: 2 (bad input found late), 3 (runtime error), 4 (a signal), 1 (a rule failed,
// an abort condition that fired counts as one), 5 (a rule could not be judged), 0.
// Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace syncstorm::engine {

struct outcome_input {
  std::string invalid;       // bad input that only the run could see (exit 2); empty: none
  std::string error;         // a runtime error (exit 3); empty: none
  int signal = 0;            // SIGINT/SIGTERM that interrupted the run; 0: none
  bool interrupted = false;  // the load was interrupted (by the signal)
  struct rule {
    bool pass = false, inconclusive = false;
  };
  std::vector<rule> rules;  // every verdict judged (the abort's synthesized one included)
  // An abort condition that fired: its name and why. It is a failed rule (exit 1).
  std::optional<std::pair<std::string, std::string>> abort;
};

struct outcome {
  std::string name;  // pass | fail | inconclusive | aborted | error
  int exit_code = 0;
  std::string reason;  // empty on pass, and on a fail without an abort
};

outcome outcome_of(const outcome_input& in);

}  // namespace syncstorm::engine
