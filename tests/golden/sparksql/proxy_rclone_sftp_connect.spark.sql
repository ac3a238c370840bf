SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpRequestMethod` AS STRING)) = lower('CONNECT') AND (lower(CAST(`Url` AS STRING)) LIKE lower('%:22') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%:21') ESCAPE '\\') AND `HttpUserAgent` IS NULL, false);
