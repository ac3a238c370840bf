SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('Microsoft-WebDAV-MiniRedir/%') ESCAPE '\' AND lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('GET'), false);
