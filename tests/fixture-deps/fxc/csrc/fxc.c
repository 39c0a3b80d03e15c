#include "fxp.h"

int fxc_answer(void) { return FXP_ANSWER; }
