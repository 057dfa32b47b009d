// Fork-join pool: parallel_for publishes a job under a generation counter, workers pick
// their static chunk, the caller runs chunk 0 and waits for the rest. Workers spin briefly
// before sleeping because layers follow each other within microseconds.
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
}

struct ThreadPool::Impl {
  int threads = 1;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable wake;
  std::atomic<std::uint64_t> generation{0};
  std::atomic<int> pending{0};
  bool stop = false;

  // The job of the current generation.
  const std::function<void(std::int64_t, std::int64_t, int)>* fn = nullptr;
  std::int64_t n = 0;
  int chunks = 0;

  void run_chunk(int index) const {
    const std::int64_t begin = n * index / chunks;
    const std::int64_t end = n * (index + 1) / chunks;
    if (begin < end) (*fn)(begin, end, index);
  }

  void worker_loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      std::uint64_t gen = generation.load(std::memory_order_acquire);
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
      if (index < chunks) run_chunk(index);
      pending.fetch_sub(1, std::memory_order_acq_rel);
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
  const int chunks = static_cast<int>(std::min<std::int64_t>(p.threads, n));
  if (chunks == 1) {
    fn(0, n, 0);
    return;
  }
  p.fn = &fn;
  p.n = n;
  p.chunks = chunks;
  p.pending.store(p.threads - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.generation.fetch_add(1, std::memory_order_acq_rel);
  }
  p.wake.notify_all();
  p.run_chunk(0);
  while (p.pending.load(std::memory_order_acquire) != 0) NPAS_CPU_RELAX();
}

}  // namespace npas
