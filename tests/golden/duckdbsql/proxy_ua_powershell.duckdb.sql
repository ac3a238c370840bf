SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('% WindowsPowerShell/%') ESCAPE '\', false);
