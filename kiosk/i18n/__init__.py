"""Languages of the centre app: gettext catalogues (ar = ar_IQ, ckb, en) and spoken-call clips."""
