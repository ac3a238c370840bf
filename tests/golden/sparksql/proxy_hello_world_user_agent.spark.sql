SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) = lower('Hello-World/1.0') AND lower(CAST(`HttpRequestMethod` AS STRING)) = lower('GET'), false);
