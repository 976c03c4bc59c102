/* placeholder: SigV4 signing (being written) */
