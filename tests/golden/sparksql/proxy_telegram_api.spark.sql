SELECT *
FROM websession
WHERE coalesce(lower(CAST(`DstHostname` AS STRING)) = lower('api.telegram.org') AND NOT coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%Telegram%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%Bot%') ESCAPE '\\', false), false);
