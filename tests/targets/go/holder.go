// A Go program holding 100,000 small objects in the Go heap (tests/e2e/test_other_heaps.py):
// heapsnap must say it is Go and that it cannot walk that heap. Writes "ready" to its argument.
package main

import (
	"fmt"
	"os"
	"time"
)

type Item struct {
	ID   int
	Name string
}

var kept []*Item

func main() {
	for i := 0; i < 100000; i++ {
		kept = append(kept, &Item{i, fmt.Sprint("item-", i)})
	}
	os.WriteFile(os.Args[1], []byte("ready"), 0644)
	for {
		time.Sleep(time.Second)
	}
}
