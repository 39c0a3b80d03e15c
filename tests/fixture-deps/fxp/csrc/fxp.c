#include "fxp.h"

int fxp_base(void) { return FXP_ANSWER - 2; }
