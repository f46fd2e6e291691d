"""A Python process whose objects are reached through fields of C types that no tp_members names:
50 Payloads each held by a closure (function -> its closure's cell), 20 held by a running asyncio
Task's coroutine. Writes "ready" to the file named by its first argument, then waits.

    python3 c_fields.py READY_FILE"""
import asyncio
import sys


class Payload:
    pass


def make(payload):
    def closure():
        return payload
    return closure


FUNCS = [make(Payload()) for i in range(50)]


async def hold(payload):
    await asyncio.sleep(100000)


async def main():
    global TASKS
    TASKS = [asyncio.ensure_future(hold(Payload())) for i in range(20)]
    await asyncio.sleep(0.1)
    with open(sys.argv[1], "w") as ready:
        ready.write("ready")
    await asyncio.sleep(100000)


asyncio.run(main())
