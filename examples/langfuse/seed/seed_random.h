// SeedRandom: the seeder's pseudo-random numbers. SplitMix64 (Steele, Lea, Flood 2014): fast,
// 64-bit state, good enough statistics for test data, identical on every platform. Every row
// gets its own generator from (run seed, table, row number), so a row's content does not depend
// on which thread or connection writes it, nor on the rows around it.
// Not thread-safe; copy it per thread.
//
//   SeedRandom rng = SeedRandom::ForRow(seed, kTraceStream, i);
//   if (rng.Chance(50)) ...;  // 5.0 %
#pragma once

#include <cstdint>

namespace bgm {

class SeedRandom {
 public:
  explicit SeedRandom(uint64_t state) : state_(state) {}

  // The generator for row `row` of the table identified by `stream`.
  static SeedRandom ForRow(uint64_t seed, uint64_t stream, int64_t row) {
    SeedRandom mix(seed ^ (stream * 0xd1b54a32d192ed03ULL));
    const uint64_t base = mix.Next();
    // Hash the row number so that rows start at unrelated points of the generator's cycle.
    SeedRandom start(base ^ (static_cast<uint64_t>(row) * 0xc2b2ae3d27d4eb4fULL));
    return SeedRandom(start.Next());
  }

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n); n > 0. The modulo bias (< n / 2^64) does not matter here.
  uint64_t Below(uint64_t n) { return Next() % n; }
  int64_t Between(int64_t lo, int64_t hi) {  // inclusive; lo <= hi
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // True with probability per_mille / 1000.
  bool Chance(uint64_t per_mille) { return Below(1000) < per_mille; }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace bgm
