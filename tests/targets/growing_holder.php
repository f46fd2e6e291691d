<?php
// A PHP program whose objects live in the Zend memory manager's heap (mmap'd chunks heapsnap does
// not walk): it holds 300,000 arrays and writes "ready" to the file named by its first argument;
// once a file named ARGUMENT.grow appears it holds 300,000 more and writes "grown" to
// ARGUMENT.grown. heapsnap's reports must say that the memory no walker reads grew.
function hold(&$kept, $from)
{
    for ($i = $from; $i < $from + 300000; $i++)
        $kept[] = ["id" => $i, "name" => "item-$i"];
}
$kept = [];
hold($kept, 0);
file_put_contents($argv[1], "ready");
while (!file_exists($argv[1] . ".grow"))
    usleep(20000);
hold($kept, 300000);
file_put_contents($argv[1] . ".grown", "grown");
while (true)
    sleep(1);
