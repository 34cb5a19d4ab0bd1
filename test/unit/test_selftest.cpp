#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

#include "core/error.hpp"
#include "core/selftest.hpp"

using lifecycle::selftest::live_probes;
using lifecycle::selftest::throw_from_depth;

TEST(Selftest, EveryKindUnwindsEveryProbe) {
    EXPECT_THROW(throw_from_depth("invalid", 30), lifecycle::Error);
    EXPECT_EQ(live_probes(), 0);
    EXPECT_THROW(throw_from_depth("date", 30), lifecycle::Error);
    EXPECT_THROW(throw_from_depth("bad_alloc", 30), std::bad_alloc);
    EXPECT_THROW(throw_from_depth("runtime", 30), std::runtime_error);
    EXPECT_THROW(throw_from_depth("unknown", 30), int);
    EXPECT_THROW(throw_from_depth("no such kind", 3), lifecycle::Error);
    EXPECT_EQ(live_probes(), 0);
}

TEST(Selftest, ProbesCountThemselves) {
    lifecycle::selftest::Probe a;
    {
        lifecycle::selftest::Probe b;
        EXPECT_EQ(live_probes(), 2);
    }
    EXPECT_EQ(live_probes(), 1);
}

TEST(Selftest, KindsCarryTheirSqlstateKind) {
    try {
        throw_from_depth("date", 5);
    } catch (const lifecycle::Error& e) {
        EXPECT_EQ(e.kind(), lifecycle::ErrorKind::date_out_of_range);
    }
    try {
        throw_from_depth("invalid", 5);
    } catch (const lifecycle::Error& e) {
        EXPECT_EQ(e.kind(), lifecycle::ErrorKind::invalid_parameter);
    }
}
