// The Boost.Context side of benches/compare: the raw context switch gostack's asm is compared
// with (boost::context::detail::jump_fcontext, the routine under fiber/callcc) and "spawn" on a
// reused stack (make_fcontext + first jump + jump back, the cheapest possible coroutine life).
// Prints "raw<TAB>name<TAB>ns" lines, one per repetition: bench_boost [REPS]
#include <boost/context/detail/fcontext.hpp>
#include <boost/version.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace ctx = boost::context::detail;

static constexpr std::size_t kStack = 64 * 1024;

static double now_ns() {
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Ping-pong partner: jumps straight back to whoever jumped to it, forever.
static void echo(ctx::transfer_t t) {
    for (;;) t = ctx::jump_fcontext(t.fctx, nullptr);
}

// One round trip = main -> echo -> main (two switches), like gostack's mcall+gogo round trip.
static double switch_round_trip(char *stack, long n) {
    ctx::fcontext_t c = ctx::make_fcontext(stack + kStack, kStack, echo);
    c = ctx::jump_fcontext(c, nullptr).fctx; // start it
    double t = now_ns();
    for (long i = 0; i < n; i++) c = ctx::jump_fcontext(c, nullptr).fctx;
    return (now_ns() - t) / n;
}

// An empty coroutine body: "runs" and hands control back for good (its stack is then reused).
static void empty(ctx::transfer_t t) {
    ctx::jump_fcontext(t.fctx, nullptr);
    std::abort(); // never resumed
}

static double spawn_reused_stack(char *stack, long n) {
    double t = now_ns();
    for (long i = 0; i < n; i++) {
        ctx::fcontext_t c = ctx::make_fcontext(stack + kStack, kStack, empty);
        ctx::jump_fcontext(c, nullptr);
    }
    return (now_ns() - t) / n;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? std::atoi(argv[1]) : 11;
    alignas(64) static char stack[kStack];
    if (argc > 2) { // "version"
        std::printf("%d.%d.%d\n", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100);
        return 0;
    }
    for (int r = 0; r < reps; r++) std::printf("raw\tswitch\t%.4f\n", switch_round_trip(stack, 2000000));
    for (int r = 0; r < reps; r++) std::printf("raw\tspawn\t%.4f\n", spawn_reused_stack(stack, 2000000));
    return 0;
}
