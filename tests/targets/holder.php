<?php
// A PHP program holding 300,000 arrays in the Zend memory manager's heap (mmap'd chunks, not
// malloc's): heapsnap walks the process's malloc heap and must say that the Zend heap, where these
// are, is not in its report. Writes "ready" to the file named by its first argument, then waits.
$kept = [];
for ($i = 0; $i < 300000; $i++)
    $kept[] = ["id" => $i, "name" => "item-$i"];
file_put_contents($argv[1], "ready");
while (true)
    sleep(1);
