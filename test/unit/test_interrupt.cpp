// Cancellation of core loops through the interrupt callback (core/interrupt.hpp).
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "cdnow_summary.hpp"
#include "core/bgnbd.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace bgnbd = lifecycle::bgnbd;

namespace {

// The callback fires from its `fire_after`-th question on.
int questions = 0;
int fire_after = 0;
bool fires_after_k() { return ++questions >= fire_after; }

// The CDNOW customers, four times over (so the row loops also ask on their own).
std::vector<bgnbd::Row> customers() {
    std::vector<bgnbd::Row> rows;
    for (int copy = 0; copy < 4; ++copy)
        for (const cdnow::Customer& c : cdnow::read_summary()) rows.push_back({{c.x, c.t_x, c.T}, 1.0});
    return rows;
}

// Registers a callback for one test and takes it away again.
class Registered {
public:
    explicit Registered(lifecycle::InterruptCallback callback)
        : previous_(lifecycle::set_interrupt_callback(callback)) {}
    ~Registered() { lifecycle::set_interrupt_callback(previous_); }

private:
    lifecycle::InterruptCallback previous_;
};

}  // namespace

TEST(Interrupt, NoCallbackNeverInterrupts) {
    Registered none(nullptr);
    EXPECT_NO_THROW(lifecycle::check_interrupts());
    const bgnbd::Fit fit = bgnbd::fit(customers());
    EXPECT_TRUE(fit.converged);
    EXPECT_GT(fit.evaluations, 5);
    EXPECT_NEAR(fit.params.r, 0.243, 1e-3);
}

TEST(Interrupt, CallbackSayingNoNeverInterrupts) {
    Registered never(+[] { return false; });
    const bgnbd::Fit fit = bgnbd::fit(customers());
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.r, 0.243, 1e-3);
}

// The fit is stopped wherever the K-th question falls: in the data preparation, inside
// the optimizer's objective (where NLopt must be stopped, not unwound) or between
// evaluations. Each time it ends in Interrupted, never in a core Error or a result.
TEST(Interrupt, StopsABgNbdFitAfterKQuestions) {
    const std::vector<bgnbd::Row> rows = customers();
    Registered counting(&fires_after_k);
    questions = 0;
    fire_after = std::numeric_limits<int>::max();
    const bgnbd::Fit whole = bgnbd::fit(rows);
    const int total = questions;  // how often an uninterrupted fit asks
    ASSERT_GT(total, 2 * whole.evaluations) << "the objective and the row loop both ask";
    for (int k : {1, 2, 3, 4, 5, total / 4, total / 2, total - 1, total}) {
        questions = 0;
        fire_after = k;
        EXPECT_THROW(bgnbd::fit(rows), lifecycle::Interrupted) << "K = " << k;
        EXPECT_EQ(questions, k) << "the fit went on asking after the interrupt, K = " << k;
    }
}

TEST(Interrupt, InterruptedIsNotACoreError) {
    Registered always(+[] { return true; });
    try {
        lifecycle::check_interrupts();
        FAIL() << "no exception";
    } catch (const lifecycle::Error&) {
        FAIL() << "Interrupted must not be a core Error";
    } catch (const lifecycle::Interrupted& e) {
        EXPECT_STREQ(e.what(), "interrupted");
    }
}
