# Every date and time the back office shows through Django's formats (list columns, read-only
# fields) carries its zone, so it is never read as another zone's time.
DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
