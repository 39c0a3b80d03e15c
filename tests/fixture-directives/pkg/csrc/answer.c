int fx_answer(void) { return 42; }
