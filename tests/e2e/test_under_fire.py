"""Captures under fire (issue 14), in short; bench/under_fire runs the same with the issue's counts.

1. Servers under load, captured again and again: the multi-threaded C echo server
   (tests/targets/echo_server.c, a thread per connection) and the Python one
   (tests/targets/burst_server.py), each with two client processes of three threads making checked
   requests without pause (tests/targets/load_client.py) while heapsnap captures it 20 times:
   every capture succeeds, leaves every thread of the server running and untraced, and its
   snapshot is whole (`heapsnap info --verify`); not one request fails (no reset, no early end, no
   timeout, no wrong byte).
2. SIGKILL, SIGTERM and SIGINT to heapsnap at random points of a capture (a delay from 0 to the
   capture's measured duration) of the C server holding 16 MiB of random bytes, under load and
   receiving a real-time signal every millisecond: 15 of each, of which every other one stops
   heapsnap first to look at where it is, so that the outcome is checked against that phase exactly (the
   table in fire.py: no file for a signal before the snapshot has its name, the whole snapshot
   after; SIGTERM and SIGINT while the target is frozen end heapsnap once it runs again); the
   others must end in one of the allowed outcomes; then 3 of each sent as soon as heapsnap is
   seen to trace the server. After every one the server runs untraced and nothing but a whole
   snapshot is left in the directory; at the end not one request failed and the server received
   every signal sent to it (one it took as heapsnap stopped it is its own, even when heapsnap is
   killed)."""
import os
import random
import signal

from common import check, finish, path
from fire import (Load, Signals, capture_seconds, capture_under_load, kill_trial, problems,
                  start_server)

CAPTURES = 20
KILLS = 15
AIMED = 3

# 1. captures of servers under load
for kind in ("c", "python"):
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

# 2. heapsnap killed at random points of a capture of a loaded server
server, port = start_server("c", "ballast-server", ballast_mib=16)
directory = path("kills")
os.mkdir(directory)
duration = capture_seconds(server.pid, directory)
load = Load(port, "ballast-server")
signals = Signals(server, "ballast-server")
trials = []
for signal_number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
    for i in range(KILLS + AIMED):
        trial = kill_trial(server.pid, directory, signal_number, random.uniform(0, duration),
                           look=i % 2 == 1 or i >= KILLS, frozen=i >= KILLS)
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
print(f"capture of {duration:.3f} s; phases looked at: {phases}; outcomes: {outcomes}; "
      f"{received} of {sent} signals received")
finish()
