"""Captures under fire (issue 14), in short; bench/under_fire runs the same with the issue's counts.

1. Servers under load, captured again and again: the multi-threaded C echo server
   (tests/targets/echo_server.c, a thread per connection) and the Python one
   (tests/targets/burst_server.py), each with two client processes of three threads making checked
   requests without pause (tests/targets/load_client.py) while heapsnap captures it 15 times:
   every capture succeeds, leaves every thread of the server running and untraced, and its
   snapshot is whole (`heapsnap info --verify`); not one request fails (no reset, no early end, no
   timeout, no wrong byte).
2. SIGKILL, SIGTERM and SIGINT to heapsnap at random points of a capture (a delay from 0 to the
   capture's duration, measured under the same load) of the C server holding 8 MiB of random
   bytes, under load and receiving a real-time signal every millisecond: 12 of each, of which
   every other one stops heapsnap first to look at where it is, so that the outcome is checked
   against that phase exactly (the table in fire.py: no file for a signal before the snapshot
   has its name, the whole snapshot after; SIGTERM and SIGINT while the target is frozen end
   heapsnap once it runs again); the others must end in one of the allowed outcomes. Then 2 of
   each sent, after a look, as soon as heapsnap is seen to trace the server, and 2 as soon as
   the snapshot has its name. After every one the server runs untraced and nothing but a whole
   snapshot is left in the directory; at the end not one request failed and the server received
   every signal sent to it (one it took as heapsnap stopped it is its own, even when heapsnap is
   killed)."""
import os
import random
import signal
import time

from common import Case, check, main, path
from fire import (Load, Signals, capture_seconds, capture_under_load, kill_trial, problems,
                  start_server)

CAPTURES = 15
KILLS = 12
AIMED = 2


def captures_under_load(kind):
    """1. captures of a server under load"""
    server, port = start_server(kind, f"{kind}-server")
    load = Load(port, f"{kind}-server")
    pauses, trouble = capture_under_load(server.pid, CAPTURES, f"{kind}-capture")
    totals = load.stop()
    check(not trouble, f"{kind} server: captures under load: {trouble[:3]}")
    check(len(pauses) == CAPTURES, f"{kind} server: each capture printed its pause: {pauses}")
    check(totals["clients_failed"] == 0, f"{kind} server: the load clients ended and reported")
    check(totals["failed"] == 0 and totals["requests"] > 0,
          f"{kind} server: {totals['failed']} of {totals['requests']} requests failed during "
          f"{CAPTURES} captures: {totals['failures'][:3]}")
    check(server.poll() is None, f"{kind} server still running")
    server.kill()
    server.wait()


class UnderFire(Case):
    def test_c_server_captured_under_load(self):
        captures_under_load("c")

    def test_python_server_captured_under_load(self):
        captures_under_load("python")

    def test_capture_killed_at_random_points(self):
        # 2. heapsnap killed at random points of a capture of a loaded server
        began = time.monotonic()
        server, port = start_server("c", "ballast-server", ballast_mib=8)
        directory = path("kills")
        os.mkdir(directory)
        load = Load(port, "ballast-server")
        signals = Signals(server, "ballast-server")
        duration = capture_seconds(server.pid, directory)
        trials = []
        for signal_number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            for i in range(KILLS + 2 * AIMED):
                aim = None if i < KILLS else ("frozen", "linked")[(i - KILLS) // AIMED]
                trial = kill_trial(server.pid, directory, signal_number, random.uniform(0, duration),
                                   look=i % 2 == 1 or aim is not None, aim=aim)
                wrong = problems(trial)
                check(not wrong, f"{signal.Signals(signal_number).name} {trial['delay']:.3f} s into a "
                                 f"capture of {duration:.3f} s (phase {trial['phase']}): {wrong}")
                trials.append(trial)
        sent, received = signals.stop()
        check(sent == received, f"kills: the server received {received} of the {sent} signals sent to it")
        totals = load.stop()
        check(totals["clients_failed"] == 0, "kills: the load clients ended and reported")
        check(totals["failed"] == 0 and totals["requests"] > 0,
              f"kills: {totals['failed']} of {totals['requests']} requests failed: "
              f"{totals['failures'][:3]}")
        check(server.poll() is None, "the server still running after the kills")
        phases = sorted({t["phase"] for t in trials if t["phase"]})
        outcomes = sorted({t["outcome"] for t in trials})
        print(f"{len(trials)} kills in {time.monotonic() - began:.1f} s, of captures of {duration:.3f} s; "
              f"phases looked at: {phases}; outcomes: {outcomes}; {received} of {sent} signals received")


if __name__ == "__main__":
    main()
