// bgmigrate: the one binary. Only argument parsing and wiring live here; see commands.h.
#include "cli/commands.h"

int main(int argc, char** argv) { return bgm::RunCli(argc, argv); }
