SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('Microsoft-WebDAV-MiniRedir/%') ESCAPE '\\' AND lower(CAST(`HttpRequestMethod` AS STRING)) = lower('GET'), false);
