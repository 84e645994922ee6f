"""Pick delivery: how a pick looks in Telegram and how it goes out (record, send, resume), the strings
users read, the callback data of every button, and the pace of Telegram requests.

Used by handlers/ (replies to commands and taps) and jobs/ (digests, notices) alike, so it lives below
both: nothing here imports handlers/ or jobs/.
"""
