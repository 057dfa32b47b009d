// Fork-join pool. parallel_for cuts [0, n) into one contiguous chunk per thread and publishes
// them under a generation number; every thread, the caller included, claims chunks from a
// shared counter until none is left. Unloaded, each thread runs its own chunk as with a static
// split; on a busy machine a worker that is not scheduled does not hold the layer up, because
// the caller (or another worker) claims its chunk. Workers spin briefly before sleeping
// because layers follow each other within microseconds.
#include "npas/threadpool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define NPAS_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define NPAS_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define NPAS_CPU_RELAX() ((void)0)
#endif

namespace npas {

namespace {
constexpr int kSpinIterations = 20000;
constexpr std::int64_t kMaxChunks = 0xffff;

// The claim word: generation (32 bits) | chunk count (16) | next chunk to claim (16), so that
// a thread can only claim a chunk of the job it read the count of.
constexpr std::uint64_t pack(std::uint32_t gen, std::uint32_t chunks, std::uint32_t next) {
  return (static_cast<std::uint64_t>(gen) << 32) | (static_cast<std::uint64_t>(chunks) << 16) |
         next;
}
}  // namespace

struct ThreadPool::Impl {
  using Fn = std::function<void(std::int64_t, std::int64_t, int)>;

  int threads = 1;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable wake;
  std::atomic<std::uint32_t> generation{0};
  std::atomic<std::uint64_t> claim{0};
  std::atomic<int> done{0};
  bool stop = false;
  // The current job; written before `claim` is published, read only after a chunk of it was
  // claimed (the caller cannot start the next job before that chunk is done).
  const Fn* fn = nullptr;
  std::int64_t n = 0;

  // Claims and runs one chunk of job `gen`; false when none is left.
  bool run_one(std::uint32_t gen, int thread) {
    std::uint64_t cur = claim.load(std::memory_order_acquire);
    for (;;) {
      const auto cur_gen = static_cast<std::uint32_t>(cur >> 32);
      const auto chunks = static_cast<std::uint32_t>((cur >> 16) & 0xffff);
      const auto next = static_cast<std::uint32_t>(cur & 0xffff);
      if (cur_gen != gen || next >= chunks) return false;
      if (claim.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        const std::int64_t begin = n * next / chunks;
        const std::int64_t end = n * (next + 1) / chunks;
        if (begin < end) (*fn)(begin, end, thread);
        done.fetch_add(1, std::memory_order_acq_rel);
        return true;
      }
    }
  }

  void worker_loop(int index) {
    std::uint32_t seen = 0;
    for (;;) {
      std::uint32_t gen = generation.load(std::memory_order_acquire);
      for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
        NPAS_CPU_RELAX();
        gen = generation.load(std::memory_order_acquire);
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return stop || generation.load() != seen; });
        if (stop) return;
        gen = generation.load(std::memory_order_acquire);
      }
      seen = gen;
      while (run_one(gen, index)) {
      }
    }
  }
};

ThreadPool::ThreadPool(int threads) : impl_(new Impl) {
  impl_->threads = std::max(1, threads);
  for (int i = 1; i < impl_->threads; ++i) {
    impl_->workers.emplace_back([this, i] { impl_->worker_loop(i); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
}

int ThreadPool::size() const { return impl_->threads; }

void ThreadPool::parallel_for(std::int64_t n,
                              const std::function<void(std::int64_t, std::int64_t, int)>& fn) {
  if (n <= 0) return;
  Impl& p = *impl_;
  const auto chunks = static_cast<std::uint32_t>(std::min<std::int64_t>({p.threads, n, kMaxChunks}));
  if (chunks == 1) {
    fn(0, n, 0);
    return;
  }
  p.fn = &fn;
  p.n = n;
  p.done.store(0, std::memory_order_relaxed);
  const std::uint32_t gen = p.generation.load(std::memory_order_relaxed) + 1;
  p.claim.store(pack(gen, chunks, 0), std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.generation.store(gen, std::memory_order_release);
  }
  p.wake.notify_all();
  while (p.run_one(gen, 0)) {
  }
  while (p.done.load(std::memory_order_acquire) < static_cast<int>(chunks)) NPAS_CPU_RELAX();
}

}  // namespace npas
