SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) = lower(''), false);
