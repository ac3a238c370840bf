SELECT *
FROM websession
WHERE coalesce(lower(CAST(`Url` AS STRING)) LIKE lower('%.paste.ee/r/%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%.pastebin.com/raw/%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%.hastebin.com/raw/%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%.ghostbin.co/paste/%/raw/%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%pastetext.net/%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%pastebin.pl/%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%paste.ee/%') ESCAPE '\\', false);
