// A Go program with cgo: glibc's malloc (1,000 blocks) beside the Go heap (100,000 objects),
// which heapsnap must name as not walked. Writes "ready" to its argument.
package main

// #include <stdlib.h>
import "C"
import (
	"os"
	"time"
)

var kept []*int

func main() {
	for i := 0; i < 100000; i++ {
		v := i
		kept = append(kept, &v)
	}
	for i := 0; i < 1000; i++ {
		C.malloc(64)
	}
	os.WriteFile(os.Args[1], []byte("ready"), 0644)
	for {
		time.Sleep(time.Second)
	}
}
