// The bgmigrate command line: subcommands, their exit codes (0 done, 1 failed, 2 usage or
// bad input) and their output. Called from main() only.
#pragma once

namespace bgm {

int RunCli(int argc, char** argv);

}  // namespace bgm
