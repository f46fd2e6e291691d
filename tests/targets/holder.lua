-- A LuaJIT program holding 300,000 tables in LuaJIT's own heap (its allocator maps memory itself):
-- heapsnap walks the process's malloc heap and must say that LuaJIT's heap, where these are, is
-- not in its report. Writes "ready" to the file named by its first argument, then waits.
local kept = {}
for i = 1, 300000 do kept[i] = {i, "item-" .. i} end
local ready = io.open(arg[1], "w")
ready:write("ready")
ready:close()
while true do os.execute("sleep 1") end
