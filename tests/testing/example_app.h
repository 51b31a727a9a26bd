// The example application (examples/langfuse/) as the tests use it: its schema folder, loaded
// once, which TestDatabase applies and which every bgmigrate child process is pointed at
// (ChildProcess sets BGMIGRATE_SCHEMA_DIR unless the test's environment names one).
// Thread-safe (loaded under a function-local static).
#pragma once

#include <string>

#include "schema/application_schema.h"

namespace bgm::testing {

// Absolute path of examples/langfuse/schema in the source tree.
std::string ExampleSchemaDir();

// That folder's files; aborts the test binary when they cannot be loaded.
const ApplicationSchema& ExampleSchema();

}  // namespace bgm::testing
