/* A program linked with libheapsnap.so that snapshots itself through the public API: it allocates
 * blocks of known sizes, records them (address and malloc_usable_size, with write(2) only), calls
 * heapsnap_capture(SNAPSHOT) and exits with 0 when it returned 0.
 *
 *     hook_api SNAPSHOT RECORD_FILE */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/hook/heapsnap.h"

#define BLOCKS 300

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	static void *blocks[BLOCKS];
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 2;
	for (int i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc((size_t)(16 + i * 37 % 2000));
		memset(blocks[i], i, 16);
	}
	for (int i = 0; i < BLOCKS; i++) {
		char line[64];
		int length = snprintf(line, sizeof line, "held %p %zu\n", blocks[i],
				      malloc_usable_size(blocks[i]));
		if (write(fd, line, (size_t)length) != length)
			return 2;
	}
	close(fd);
	int result = heapsnap_capture(argv[1]);
	if (result != 0)
		perror("heapsnap_capture");
	/* the blocks are still ours and intact after the capture */
	for (int i = 0; i < BLOCKS; i++)
		for (int k = 0; k < 16; k++)
			if (((unsigned char *)blocks[i])[k] != (unsigned char)i)
				return 3;
	return result == 0 ? 0 : 1;
}
