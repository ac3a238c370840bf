SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpRequestMethod` AS STRING)) = lower('GET') AND (lower(CAST(`Url` AS STRING)) LIKE lower('%/api/Core/Command/Init') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%/api/Core/Command/Restart') ESCAPE '\\'), false);
