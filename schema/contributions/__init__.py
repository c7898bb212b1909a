"""Contributions that are neither a customer edit nor a new activity record: which
partner serves a customer (operator only) and the customer's consent."""
