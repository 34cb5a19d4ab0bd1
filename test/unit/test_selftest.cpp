#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

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

// Each kind, caught as what it is, at several depths: every Probe of every frame has been
// destroyed by the time the handler runs (the count is back where it started).
TEST(Selftest, LiveProbesBackToZeroAfterEachKind) {
    ASSERT_EQ(live_probes(), 0);
    for (int depth : {0, 1, 7, 200}) {
        bool caught = false;
        try {
            throw_from_depth("invalid", depth);
        } catch (const lifecycle::Error& e) {
            caught = e.kind() == lifecycle::ErrorKind::invalid_parameter;
            EXPECT_EQ(live_probes(), 0) << "invalid, depth " << depth;
        }
        EXPECT_TRUE(caught);
        caught = false;
        try {
            throw_from_depth("date", depth);
        } catch (const lifecycle::Error& e) {
            caught = e.kind() == lifecycle::ErrorKind::date_out_of_range;
            EXPECT_EQ(live_probes(), 0) << "date, depth " << depth;
        }
        EXPECT_TRUE(caught);
        caught = false;
        try {
            throw_from_depth("bad_alloc", depth);
        } catch (const std::bad_alloc&) {
            caught = true;
            EXPECT_EQ(live_probes(), 0) << "bad_alloc, depth " << depth;
        }
        EXPECT_TRUE(caught);
        caught = false;
        try {
            throw_from_depth("runtime", depth);
        } catch (const lifecycle::Error&) {
            ADD_FAILURE() << "runtime thrown as lifecycle::Error";
        } catch (const std::runtime_error& e) {
            caught = true;
            EXPECT_EQ(live_probes(), 0) << "runtime, depth " << depth;
        }
        EXPECT_TRUE(caught);
        caught = false;
        try {
            throw_from_depth("unknown", depth);
        } catch (int value) {
            caught = value == 42;
            EXPECT_EQ(live_probes(), 0) << "unknown, depth " << depth;
        }
        EXPECT_TRUE(caught);
        caught = false;
        try {
            throw_from_depth("nonsense", depth);
        } catch (const lifecycle::Error& e) {
            caught = e.kind() == lifecycle::ErrorKind::invalid_parameter &&
                     std::string(e.what()).find("\"kind\"") != std::string::npos;
            EXPECT_EQ(live_probes(), 0) << "nonsense, depth " << depth;
        }
        EXPECT_TRUE(caught);
    }
}

// Probes held by the caller are not disturbed by an unwinding underneath them.
TEST(Selftest, CallerProbesSurviveTheUnwinding) {
    lifecycle::selftest::Probe mine;
    EXPECT_EQ(live_probes(), 1);
    EXPECT_THROW(throw_from_depth("runtime", 50), std::runtime_error);
    EXPECT_EQ(live_probes(), 1);
}
