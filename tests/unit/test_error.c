/* The error value: each setter leaves the code a caller branches on, the errno, and the sentence
 * the user reads, and a prefix changes only the sentence. */
#include <errno.h>
#include <string.h>

#include "common/error.h"
#include "test_util.h"

int main(void)
{
	struct hs_error err = {0};
	CHECK(err.code == HS_ERR_NONE, "a zeroed error is no error");

	CHECK(hs_error_set(&err, "plain %d", 1) == -1, "hs_error_set returns -1");
	CHECK(err.code == HS_ERR_OTHER && err.errnum == 0 && strcmp(err.message, "plain 1") == 0,
	      "hs_error_set: %s (%s)", err.message, hs_error_code_name(err.code));

	hs_error_nomem(&err, "reading %s", "a.snap");
	CHECK(err.code == HS_ERR_NOMEM && strcmp(err.message, "out of memory reading a.snap") == 0,
	      "hs_error_nomem: %s (%s)", err.message, hs_error_code_name(err.code));

	hs_error_set_errno(&err, ENOENT, "cannot open %s", "a.snap");
	CHECK(err.code == HS_ERR_OS && err.errnum == ENOENT, "hs_error_set_errno: %s",
	      hs_error_code_name(err.code));
	CHECK(strncmp(err.message, "cannot open a.snap: ", 20) == 0 &&
		      strcmp(err.message + 20, strerror(ENOENT)) == 0,
	      "hs_error_set_errno: %s", err.message);

	hs_error_set_code_errno(&err, HS_ERR_PERMISSION, EPERM, "cannot attach to pid %d", 7);
	CHECK(err.code == HS_ERR_PERMISSION && err.errnum == EPERM &&
		      strncmp(err.message, "cannot attach to pid 7: ", 24) == 0,
	      "hs_error_set_code_errno: %s", err.message);

	hs_error_set_code(&err, HS_ERR_DAMAGED, "%s: bad seek table", "a.snap");
	hs_error_prefix(&err, "opening %s: ", "a.snap");
	CHECK(err.code == HS_ERR_DAMAGED && err.errnum == 0 &&
		      strcmp(err.message, "opening a.snap: a.snap: bad seek table") == 0,
	      "hs_error_prefix keeps the code: %s (%s)", err.message,
	      hs_error_code_name(err.code));

	CHECK(hs_error_nomem(NULL, "anything") == -1 && hs_error_set_code(NULL, HS_ERR_GONE, "x") == -1,
	      "a NULL error is allowed");
	CHECK(strcmp(hs_error_code_name(HS_ERR_HOLD_LOST), "target let go") == 0 &&
		      strcmp(hs_error_code_name((enum hs_error_code)999), "unknown error") == 0,
	      "code names");
	return TEST_EXIT();
}
